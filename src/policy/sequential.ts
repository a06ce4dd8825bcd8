/**
 * The default canary policy: sequential tests that stay valid when checked every few minutes for days.
 *
 * Each check runs three one-sided tests on the CUMULATIVE canary phase (all steps so far), each acting
 * only on the canary being WORSE:
 *   - quality: an always-valid upper confidence bound on canary mean − stable mean
 *     (confidence-sequence.ts); roll back when it is below −margin·|stable mean| (margin 0 by default:
 *     evidence of any drop);
 *   - error rate and slow-request share: mixture likelihood-ratio tests on who got the bad events,
 *     given the traffic split (bad-event-test.ts); roll back when LR ≥ 1/α.
 * The false-rollback budget `alpha` (default 1% per rollout for a candidate exactly as good as stable)
 * is split between them, so the union of the three rolls back an equal candidate with probability
 * ≤ alpha over the whole canary phase. "≤" is exact for the idealised tests and approximate here
 * (estimated variances, a pooled split before the current step); bench/policy.ts measures ≈ 0.6%.
 *
 * When nothing says "worse", the current step advances only
 *   1. once it has gathered its own minimum sample (the `step` counts);
 *   2. while no test's e-value leans toward "worse" (> promotion.maxEValue, default 1): a regression
 *      still below the rollback threshold keeps the canary where it is, so it is caught there, with
 *      less traffic exposed and a large stable arm to compare against;
 *   3. before the last steps, once a non-inferiority bound shows the canary at most
 *      `finalGate.toleranceRel` worse than stable, and its error rate below `finalGate.errorRatio` ×
 *      stable's. Without that gate a slightly worse candidate would walk to 100% simply because
 *      "no evidence of harm" is easy to get from little data.
 *
 * Caveat: the tests compare the arms pooled over the whole canary phase. Traffic that changes over the
 * day (a different mix of questions at night) hits both arms alike within a step, but a step change
 * shifts the canary's weight toward the later hours. Over hours-long steps this is a small effect next
 * to the noise; a route with strong daily swings should use shorter steps or a step-local window.
 */
import { DEFAULT_SEQUENTIAL_CONFIG, type SequentialConfig } from './config';
import { cleanPair, countsBefore, type ArmCounts } from './arm';
import { badEventMixture, logLikelihoodRatio, type BadEventSegment } from './bad-event-test';
import {
  lowerConfidenceBound,
  meanDifference,
  mixtureRho,
  normalMixtureLogE,
  upperConfidenceBound,
  type MeanDifference,
} from './confidence-sequence';
import { confidenceLabel, finite, fixed, percent, signed, signedPercent } from './format';
import { nextShareBps } from './steps';
import type { ArmPair, ArmStats, Decision, PolicyInput } from './types';

type Stats = Decision['stats'];

/** Outcome of one test: did it find the canary worse, and what did it see. */
interface TestOutcome {
  name: 'quality' | 'errors' | 'slow requests';
  verdict: 'worse' | 'no-evidence' | 'insufficient';
  reason: string;
  /** log e-value for "canary worse" (rollback at log(1/α)); null when the test could not run. */
  logE: number | null;
}

function qualitySummary(arm: ArmStats) {
  return { n: arm.scored, mean: arm.qualityMean ?? 0, variance: arm.qualityVariance };
}

/** The mean difference, or null when the arms cannot be compared yet. */
function qualityDifference(cum: ArmPair, config: SequentialConfig): MeanDifference | null {
  if (cum.canary.scored < config.quality.minCanaryScored) return null;
  return meanDifference(qualitySummary(cum.canary), qualitySummary(cum.stable), config.quality);
}

function qualityTest(
  cum: ArmPair,
  diff: MeanDifference | null,
  config: SequentialConfig,
  stats: Stats,
): TestOutcome {
  const alpha = config.alpha * config.alphaSplit.quality;
  const { canary, stable } = cum;
  stats['quality.alpha'] = alpha;
  stats['canary.scored'] = canary.scored;
  stats['stable.scored'] = stable.scored;
  stats['canary.mean'] = finite(canary.qualityMean);
  stats['stable.mean'] = finite(stable.qualityMean);
  if (diff === null) {
    const need = config.quality.minCanaryScored;
    return {
      name: 'quality',
      verdict: 'insufficient',
      reason:
        canary.scored < need
          ? `quality: waiting for ${need} canary scores (have ${canary.scored})`
          : `quality: waiting for at least 2 stable scores (have ${stable.scored})`,
      logE: null,
    };
  }
  const stableMean = stable.qualityMean ?? 0;
  const scale = Math.abs(stableMean);
  const rho = mixtureRho(config.quality.mixtureRelEffect, stableMean);
  const upper = upperConfidenceBound(diff, rho, alpha);
  const threshold = -config.quality.rollbackMarginRel * scale;
  // The same test as an e-value: upper < threshold exactly when logE ≥ log(1/α).
  const logE = normalMixtureLogE((threshold - diff.diff) * diff.information, diff.information, rho);
  stats['quality.diff'] = finite(diff.diff);
  stats['quality.relDiff'] = scale > 0 ? finite(diff.diff / scale) : null;
  stats['quality.se'] = finite(Math.sqrt(diff.varianceOfDiff));
  stats['quality.canaryVariance'] = finite(diff.canaryVariance);
  stats['quality.stableVariance'] = finite(diff.stableVariance);
  stats['quality.upper'] = finite(upper.bound);
  stats['quality.upperRel'] = scale > 0 ? finite(upper.bound / scale) : null;
  stats['quality.rollbackThreshold'] = threshold;
  stats['quality.logE'] = finite(logE);
  const means =
    `canary ${fixed(canary.qualityMean)} (n=${canary.scored}) vs stable ${fixed(stable.qualityMean)} (n=${stable.scored}), ` +
    `diff ${signed(diff.diff)}${scale > 0 ? ` (${signedPercent(diff.diff / scale)})` : ''}`;
  const bound = `always-valid ${confidenceLabel(alpha)} upper bound ${signed(upper.bound)}`;
  if (upper.bound < threshold) {
    return {
      name: 'quality',
      verdict: 'worse',
      reason: `quality: ${means}; ${bound} < ${signed(threshold)} → canary worse`,
      logE,
    };
  }
  return {
    name: 'quality',
    verdict: 'no-evidence',
    reason: `quality: ${means}; ${bound} ≥ ${signed(threshold)} → no evidence of a drop`,
    logE,
  };
}

/** Stats keys per bad-event kind, spelled out once (the bench calls the policy millions of times). */
const BAD_EVENT_KEYS = {
  errors: {
    label: 'errors',
    canary: 'errors.canary',
    stable: 'errors.stable',
    canaryRate: 'errors.canaryRate',
    stableRate: 'errors.stableRate',
    expected: 'errors.expectedCanary',
    logLR: 'errors.logLR',
    logThreshold: 'errors.logThreshold',
    alpha: 'errors.alpha',
  },
  slow: {
    label: 'slow requests',
    canary: 'slow.canary',
    stable: 'slow.stable',
    canaryRate: 'slow.canaryRate',
    stableRate: 'slow.stableRate',
    expected: 'slow.expectedCanary',
    logLR: 'slow.logLR',
    logThreshold: 'slow.logThreshold',
    alpha: 'slow.alpha',
  },
} as const;

function segment(canary: ArmCounts, stable: ArmCounts): BadEventSegment {
  return {
    canaryBad: canary.bad,
    canaryRequests: canary.requests,
    stableBad: stable.bad,
    stableRequests: stable.requests,
  };
}

/** Everything before the current step, and the current step (constant split): a split change is not a shift. */
function badEventSegments(kind: 'errors' | 'slow', cum: ArmPair, step: ArmPair): BadEventSegment[] {
  const stepCanary = { requests: step.canary.requests, bad: step.canary[kind] };
  const stepStable = { requests: step.stable.requests, bad: step.stable[kind] };
  const before = segment(
    countsBefore({ requests: cum.canary.requests, bad: cum.canary[kind] }, stepCanary),
    countsBefore({ requests: cum.stable.requests, bad: cum.stable[kind] }, stepStable),
  );
  return [before, segment(stepCanary, stepStable)];
}

function badEventTest(
  kind: 'errors' | 'slow',
  cum: ArmPair,
  step: ArmPair,
  config: SequentialConfig,
  stats: Stats,
): TestOutcome {
  const keys = BAD_EVENT_KEYS[kind];
  const alpha = config.alpha * config.alphaSplit[kind];
  const logThreshold = -Math.log(alpha);
  const e = badEventMixture(badEventSegments(kind, cum, step), config.badEvents.rateRatios);
  const canaryRate = e.canaryRequests > 0 ? e.canaryBad / e.canaryRequests : null;
  const stableRate = e.stableRequests > 0 ? e.stableBad / e.stableRequests : null;
  stats[keys.canary] = e.canaryBad;
  stats[keys.stable] = e.stableBad;
  stats[keys.canaryRate] = canaryRate;
  stats[keys.stableRate] = stableRate;
  stats[keys.expected] = finite(e.expectedCanaryBad);
  stats[keys.logLR] = finite(e.logLR);
  stats[keys.logThreshold] = finite(logThreshold);
  stats[keys.alpha] = alpha;
  if (e.canaryRequests === 0 || e.stableRequests === 0) {
    return {
      name: keys.label,
      verdict: 'insufficient',
      reason: `${keys.label}: need requests in both arms`,
      logE: null,
    };
  }
  const summary =
    `${keys.label}: canary ${e.canaryBad}/${e.canaryRequests} (${percent(canaryRate)}) vs stable ` +
    `${e.stableBad}/${e.stableRequests} (${percent(stableRate)}); ${e.canaryBad} on canary where ` +
    `${fixed(e.expectedCanaryBad, 1)} expected; mixture log LR ${fixed(e.logLR)}`;
  if (e.logLR >= logThreshold) {
    return {
      name: keys.label,
      verdict: 'worse',
      reason: `${summary} ≥ ${fixed(logThreshold)} = log(1/${alpha}) → canary worse (≈${e.bestRatio}× stable)`,
      logE: e.logLR,
    };
  }
  return {
    name: keys.label,
    verdict: 'no-evidence',
    reason: `${summary} < ${fixed(logThreshold)} → no evidence`,
    logE: e.logLR,
  };
}

/** Non-inferiority before the last steps: lower bound on (canary − stable)/|stable| above −tolerance. */
function finalGate(
  cum: ArmPair,
  diff: MeanDifference | null,
  config: SequentialConfig,
  stats: Stats,
): { passed: boolean; reason: string } {
  const g = config.finalGate;
  stats['gate.alpha'] = g.alpha;
  stats['gate.toleranceRel'] = g.toleranceRel;
  if (diff === null) {
    return { passed: false, reason: 'final gate: needs comparable quality scores in both arms → hold' };
  }
  const stableMean = cum.stable.qualityMean ?? 0;
  const scale = Math.abs(stableMean);
  const lower = lowerConfidenceBound(diff, mixtureRho(g.mixtureRelEffect, stableMean), g.alpha);
  const threshold = -g.toleranceRel * scale;
  stats['gate.lower'] = finite(lower.bound);
  stats['gate.lowerRel'] = scale > 0 ? finite(lower.bound / scale) : null;
  stats['gate.threshold'] = threshold;
  const bound =
    `always-valid ${confidenceLabel(g.alpha)} lower bound on canary − stable ${signed(lower.bound)}` +
    (scale > 0 ? ` (${signedPercent(lower.bound / scale)} of stable)` : '');
  const tolerance = `−${percent(g.toleranceRel, 1)}`;
  return lower.bound > threshold
    ? { passed: true, reason: `final gate: ${bound} > ${tolerance} → non-inferior` }
    : { passed: false, reason: `final gate: ${bound} ≤ ${tolerance} → not yet shown within tolerance, hold` };
}

/**
 * The error part of the final gate: the data must favour "same error rate" over "`errorRatio` × stable's"
 * by 1/α (a test martingale when the canary is that much worse, so such a canary passes with probability
 * ≤ α however often this is checked). Without it, a canary whose extra errors never quite reached the
 * rollback threshold could walk to 100%. Undefined when it does not apply.
 */
function errorGate(
  cum: ArmPair,
  step: ArmPair,
  config: SequentialConfig,
  stats: Stats,
): { passed: boolean; reason: string } | undefined {
  const { errorRatio: ratio, errorFloorRate: floor, alpha } = config.finalGate;
  if (!(ratio > 1)) return undefined;
  const canaryRate = cum.canary.requests > 0 ? cum.canary.errors / cum.canary.requests : 0;
  const stableRate = cum.stable.requests > 0 ? cum.stable.errors / cum.stable.requests : 0;
  const rates = `canary ${cum.canary.errors}/${cum.canary.requests} (${percent(canaryRate)}) vs stable ${cum.stable.errors}/${cum.stable.requests} (${percent(stableRate)})`;
  if (canaryRate <= floor) {
    stats['gate.errors'] = 'below floor';
    return {
      passed: true,
      reason: `final gate, errors: ${rates}; canary at most ${percent(floor)} → not gated`,
    };
  }
  const logLR = -logLikelihoodRatio(badEventSegments('errors', cum, step), ratio);
  const threshold = -Math.log(alpha);
  stats['gate.errors'] = 'tested';
  stats['gate.errors.logLR'] = finite(logLR);
  stats['gate.errors.threshold'] = finite(threshold);
  const test = `log LR of "same rate" against "${ratio}× stable" ${fixed(logLR)}`;
  return logLR >= threshold
    ? {
        passed: true,
        reason: `final gate, errors: ${rates}; ${test} ≥ ${fixed(threshold)} → not ${ratio}× worse`,
      }
    : {
        passed: false,
        reason: `final gate, errors: ${rates}; ${test} < ${fixed(threshold)} → not yet shown below ${ratio}× stable, hold`,
      };
}

function decision(action: Decision['action'], reasons: string[], stats: Stats): Decision {
  return { action, policy: 'sequential', reasons, stats };
}

/** The sequential policy. Arms are cleaned here (NaN, negatives, inconsistent counts), so any input is safe. */
export function decideSequential(
  input: PolicyInput,
  config: SequentialConfig = DEFAULT_SEQUENTIAL_CONFIG,
): Decision {
  const cum = cleanPair(input.cumulative);
  const step = cleanPair(input.step);
  const context = input.context;
  const next = nextShareBps(context);
  const stats: Stats = {
    shareBps: context.shareBps,
    nextShareBps: next,
    'canary.requests': cum.canary.requests,
    'stable.requests': cum.stable.requests,
  };
  if (context.shareBps >= 10000) {
    return decision('hold', ['canary already serves 100%; nothing left to decide'], stats);
  }

  const diff = qualityDifference(cum, config);
  const tests = [
    qualityTest(cum, diff, config, stats),
    badEventTest('errors', cum, step, config, stats),
    badEventTest('slow', cum, step, config, stats),
  ];
  const worse = tests.filter((t) => t.verdict === 'worse');
  if (worse.length > 0)
    return decision(
      'rollback',
      worse.map((t) => t.reason),
      stats,
    );
  const reasons = tests.map((t) => t.reason);

  // Promotion: the step's own minimum sample first.
  const p = config.promotion;
  stats['step.canary.scored'] = step.canary.scored;
  stats['step.canary.requests'] = step.canary.requests;
  stats['step.minScored'] = p.minCanaryScoredPerStep;
  stats['step.minRequests'] = p.minCanaryRequestsPerStep;
  if (step.canary.scored < p.minCanaryScoredPerStep || step.canary.requests < p.minCanaryRequestsPerStep) {
    reasons.push(
      `promotion: this step has ${step.canary.scored}/${p.minCanaryScoredPerStep} canary scores and ` +
        `${step.canary.requests}/${p.minCanaryRequestsPerStep} canary requests → hold`,
    );
    return decision('hold', reasons, stats);
  }
  // Do not add exposure while the evidence leans toward "worse", even below the rollback threshold:
  // a real regression is then caught at the current share, sooner and with less traffic exposed.
  const logCaution = Math.log(p.maxEValue);
  stats['step.maxLogE'] = finite(logCaution);
  // Strictly above: with no bad events at all the likelihood ratio is exactly 1, which is no lean either way.
  const leaning = tests.filter((t) => t.logE !== null && t.logE > logCaution);
  if (leaning.length > 0) {
    const names = leaning.map((t) => t.name).join(', ');
    reasons.push(`promotion: ${names} evidence leans toward worse (e-value > ${p.maxEValue}) → hold`);
    return decision('hold', reasons, stats);
  }
  // "No evidence of a drop" means nothing when there was nothing to compare.
  if ((p.minCanaryScoredPerStep > 0 && tests[0].verdict === 'insufficient') || cum.stable.requests === 0) {
    reasons.push('promotion: stable and canary are not yet comparable → hold');
    return decision('hold', reasons, stats);
  }
  const gated = config.finalGate.enabled && (next >= config.finalGate.fromBps || context.isFinalStep);
  stats['gate.applies'] = gated ? 'yes' : 'no';
  if (gated) {
    const gate = finalGate(cum, diff, config, stats);
    reasons.push(gate.reason);
    if (!gate.passed) return decision('hold', reasons, stats);
    const errors = errorGate(cum, step, config, stats);
    if (errors) {
      reasons.push(errors.reason);
      if (!errors.passed) return decision('hold', reasons, stats);
    }
  }
  reasons.push(`promotion: step sample reached, no evidence of harm → ${context.shareBps} → ${next} bps`);
  return decision('promote-step', reasons, stats);
}
