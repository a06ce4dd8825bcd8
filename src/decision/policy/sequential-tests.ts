/**
 * The tests behind the sequential policy (sequential.ts), one function each, so that the hold estimate
 * (estimate.ts) can ask each of them the same question on projected data.
 *
 * Rollback tests act only on the canary being WORSE: the quality confidence sequence and the bad-event
 * mixture likelihood ratios. The final gate (before the last steps) asks the opposite question: has the
 * canary been shown NOT to be materially worse?
 */
import type { SequentialConfig } from './config';
import type { ArmCounts } from './arm';
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
import type { ArmPair, ArmStats, BadEventCounts, Decision, StepCounts } from './types';

export type Stats = Decision['stats'];

/** Outcome of one test: did it find the canary worse, and what did it see. */
export interface TestOutcome {
  name: 'quality' | 'errors' | 'slow requests' | 'refusals' | 'attempt errors';
  verdict: 'worse' | 'no-evidence' | 'insufficient';
  reason: string;
  /** log e-value for "canary worse" (rollback at log(1/α)); null when the test could not run. */
  logE: number | null;
}

function qualitySummary(arm: ArmStats) {
  return { n: arm.scored, mean: arm.qualityMean ?? 0, variance: arm.qualityVariance };
}

/** The mean difference, or null when the arms cannot be compared yet. */
export function qualityDifference(cum: ArmPair, config: SequentialConfig): MeanDifference | null {
  if (cum.canary.scored < config.quality.minCanaryScored) return null;
  return meanDifference(qualitySummary(cum.canary), qualitySummary(cum.stable), config.quality);
}

export function qualityTest(
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

/** The bad-event tests: errors and slow requests per request, refusals per request, failed attempts per attempt. */
export type BadEventKind = 'errors' | 'slow' | 'refusals' | 'attemptErrors';

/** Stats keys per bad-event kind, spelled out once (the bench calls the policy millions of times). */
const keysOf = <P extends string, L extends TestOutcome['name']>(prefix: P, label: L) =>
  ({
    label,
    canary: `${prefix}.canary`,
    stable: `${prefix}.stable`,
    canaryRate: `${prefix}.canaryRate`,
    stableRate: `${prefix}.stableRate`,
    expected: `${prefix}.expectedCanary`,
    logLR: `${prefix}.logLR`,
    logThreshold: `${prefix}.logThreshold`,
    alpha: `${prefix}.alpha`,
    segments: `${prefix}.segments`,
  }) as const;

const BAD_EVENT_KEYS = {
  errors: keysOf('errors', 'errors'),
  slow: keysOf('slow', 'slow requests'),
  refusals: keysOf('refusals', 'refusals'),
  attemptErrors: keysOf('attemptErrors', 'attempt errors'),
} as const;

function segment(canary: ArmCounts, stable: ArmCounts): BadEventSegment {
  return {
    canaryBad: canary.bad,
    canaryRequests: canary.requests,
    stableBad: stable.bad,
    stableRequests: stable.requests,
  };
}

/**
 * The trials and bad events of one kind. A refusal is a request the arm did not serve, so its trials are
 * the served requests plus the refused ones (a candidate that refuses everything has trials, and fails);
 * attempt errors are counted per provider attempt.
 */
export const countsOf = (arm: BadEventCounts, kind: BadEventKind): ArmCounts => {
  switch (kind) {
    case 'refusals':
      return { requests: arm.requests + (arm.refusals ?? 0), bad: arm.refusals ?? 0 };
    case 'attemptErrors':
      return { requests: arm.attempts ?? arm.requests, bad: arm.attemptErrors ?? 0 };
    default:
      return { requests: arm.requests, bad: arm[kind] };
  }
};

/**
 * One segment per canary step, each at its own split: `previousSteps` (oldest first), then the current
 * step. (Pooling the earlier steps into one segment at their average split, recomputed at every step
 * change, is conservative at each check but not one supermartingale: Ville's bound would not cover the
 * whole phase. test/unit/policy-segments.test.ts measures the difference.)
 */
export function badEventSegments(
  kind: BadEventKind,
  step: ArmPair,
  previousSteps: readonly StepCounts[],
): BadEventSegment[] {
  return [
    ...previousSteps.map((s) => segment(countsOf(s.canary, kind), countsOf(s.stable, kind))),
    segment(countsOf(step.canary, kind), countsOf(step.stable, kind)),
  ];
}

/** The alpha of a bad-event test; undefined when the resolved policy has no share for it (test off). */
export function badEventAlpha(config: SequentialConfig, kind: BadEventKind): number | undefined {
  const share = config.alphaSplit[kind];
  return share === undefined ? undefined : config.alpha * share;
}

/** 0.19 → "19%", 0.004 → "0.4%", 0.00012 → "0.01%": as a person would say a rate. */
export function roughPercent(x: number | null): string {
  if (x === null || !Number.isFinite(x)) return 'n/a';
  const v = x * 100;
  if (v === 0) return '0%';
  return `${v >= 10 ? v.toFixed(0) : v >= 0.1 ? Number(v.toFixed(1)) : Number(v.toPrecision(1))}%`;
}

/** The kind most of the canary's refusals were (ties: the alphabetically first), for the reason. */
export function dominantRefusal(kinds: Record<string, number> | undefined): string {
  let best = 'bad_request';
  let n = 0;
  for (const [k, c] of Object.entries(kinds ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)))
    if (c > n) [best, n] = [k, c];
  return best;
}

/** The reason's first words: what a person reads in the rollback alert. */
function headline(kind: BadEventKind, cum: ArmPair, canaryRate: number | null, stableRate: number | null) {
  const label = BAD_EVENT_KEYS[kind].label;
  if (kind === 'refusals') {
    const as = canaryRate ? ` as ${dominantRefusal(cum.canary.refusalKinds)}` : '';
    return `${label}: candidate refused ${roughPercent(canaryRate)} of requests${as}, stable ${roughPercent(stableRate)}`;
  }
  if (kind === 'attemptErrors')
    return `${label}: candidate ${roughPercent(canaryRate)} of attempts failed, stable ${roughPercent(stableRate)}`;
  return `${label}:`;
}

export function badEventTest(
  kind: BadEventKind,
  cum: ArmPair,
  step: ArmPair,
  config: SequentialConfig,
  stats: Stats,
  previousSteps: readonly StepCounts[],
): TestOutcome {
  const keys = BAD_EVENT_KEYS[kind];
  const alpha = badEventAlpha(config, kind);
  if (alpha === undefined)
    return { name: keys.label, verdict: 'insufficient', reason: `${keys.label}: not tested`, logE: null };
  const logThreshold = -Math.log(alpha);
  const segments = badEventSegments(kind, step, previousSteps);
  const e = badEventMixture(segments, config.badEvents.rateRatios);
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
  // One per canary step.
  stats[keys.segments] = segments.length;
  const unit = kind === 'attemptErrors' ? 'attempts' : 'requests';
  if (e.canaryRequests === 0 || e.stableRequests === 0) {
    return {
      name: keys.label,
      verdict: 'insufficient',
      reason: `${keys.label}: need ${unit} in both arms`,
      logE: null,
    };
  }
  const counts =
    `canary ${e.canaryBad}/${e.canaryRequests} (${percent(canaryRate)}) vs stable ` +
    `${e.stableBad}/${e.stableRequests} (${percent(stableRate)}); ${e.canaryBad} on canary where ` +
    `${fixed(e.expectedCanaryBad, 1)} expected; mixture log LR ${fixed(e.logLR)}`;
  const head = headline(kind, cum, canaryRate, stableRate);
  const summary = kind === 'errors' || kind === 'slow' ? `${head} ${counts}` : `${head} (${counts})`;
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

/**
 * Non-inferiority before the last steps: the canary shown at most `toleranceRel` × |stable mean| worse.
 * 'likelihood-ratio': with δ the tolerance, D the observed difference and I its information, the log
 * likelihood ratio of "difference 0" against "difference −δ" is I·δ·(D + δ/2) (normal approximation, as
 * for the confidence sequence). Under "−δ or worse" it is a test martingale, so by Ville's inequality such
 * a canary passes with probability ≤ α however often this is checked; under "equal" it grows by δ²/2 per
 * unit of information, the fastest any test with that guarantee can (Wald).
 */
export function finalGate(
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
  const tolerance = `−${percent(g.toleranceRel, 1)}`;
  if (g.method === 'likelihood-ratio') {
    const delta = Math.max(g.toleranceRel * scale, 1e-9);
    const logLR = diff.information * delta * (diff.diff + delta / 2);
    const threshold = -Math.log(g.alpha);
    stats['gate.logLR'] = finite(logLR);
    stats['gate.threshold'] = finite(threshold);
    const shown =
      `canary − stable ${signed(diff.diff)}` +
      (scale > 0 ? ` (${signedPercent(diff.diff / scale)})` : '') +
      ` over ${cum.canary.scored} canary scores; log LR of "as good as stable" against "${percent(g.toleranceRel, 1)} worse" ${fixed(logLR)}`;
    return logLR >= threshold
      ? {
          passed: true,
          reason: `final gate: ${shown} ≥ ${fixed(threshold)} = log(1/${g.alpha}) → non-inferior`,
        }
      : {
          passed: false,
          reason: `final gate: ${shown} < ${fixed(threshold)} → not yet shown within ${percent(g.toleranceRel, 1)} of stable, hold`,
        };
  }
  const lower = lowerConfidenceBound(diff, mixtureRho(g.mixtureRelEffect, stableMean), g.alpha);
  const threshold = -g.toleranceRel * scale;
  stats['gate.lower'] = finite(lower.bound);
  stats['gate.lowerRel'] = scale > 0 ? finite(lower.bound / scale) : null;
  stats['gate.threshold'] = threshold;
  const bound =
    `always-valid ${confidenceLabel(g.alpha)} lower bound on canary − stable ${signed(lower.bound)}` +
    (scale > 0 ? ` (${signedPercent(lower.bound / scale)} of stable)` : '');
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
export function errorGate(
  cum: ArmPair,
  step: ArmPair,
  config: SequentialConfig,
  stats: Stats,
  previousSteps: readonly StepCounts[],
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
  const logLR = -logLikelihoodRatio(badEventSegments('errors', step, previousSteps), ratio);
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
