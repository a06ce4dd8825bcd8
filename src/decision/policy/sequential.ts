/**
 * The default canary policy: sequential tests that stay valid when checked every few minutes for days.
 *
 * Each check runs five one-sided tests on the CUMULATIVE canary phase (all steps so far), each acting
 * only on the canary being WORSE:
 *   - quality: an always-valid upper confidence bound on canary mean − stable mean
 *     (confidence-sequence.ts); roll back when it is below −margin·|stable mean| (margin 0 by default:
 *     evidence of any drop);
 *   - error rate, refusal rate (requests refused with a 400, by content policy, for an unsupported
 *     parameter: a refusal is the client's only when stable refuses it as often), attempt-error rate
 *     (provider calls that failed, retried or not) and slow-request share: mixture likelihood-ratio tests
 *     on who got the bad events, given the traffic split (bad-event-test.ts); roll back when LR ≥ 1/α.
 * The false-rollback budget `alpha` (default 1% per rollout for a candidate exactly as good as stable)
 * is split between them, so the union of the five rolls back an equal candidate with probability
 * ≤ alpha over the whole canary phase. "≤" is exact for the idealised tests and approximate here
 * (estimated variances; for rollouts from before per-step windows, a pooled split before the current step); bench/policy.ts measures ≈ 0.3%.
 *
 * When nothing says "worse", the current step advances only
 *   1. once it has gathered its own minimum sample (the `step` counts);
 *   2. while no test's evidence for "worse" is material (e-value > promotion.maxEValue, default 4; v1
 *      held at any lean, 1, which an equal candidate's noise shows half the time): a regression still
 *      below the rollback threshold keeps the canary where it is, so it is caught there, with less
 *      traffic exposed and a large stable arm to compare against;
 *   3. before the last steps, once the data show the canary at most `finalGate.toleranceRel` worse than
 *      stable (a likelihood-ratio test of "equal" against "that much worse", or in v1 a confidence
 *      bound), and its error rate below `finalGate.errorRatio` × stable's. Without that gate a slightly
 *      worse candidate would walk to 100% simply because "no evidence of harm" is easy to get from
 *      little data.
 *
 * While a step is held, estimate.ts says which of these holds it and for how long.
 *
 * Caveat: the tests compare the arms pooled over the whole canary phase. Traffic that changes over the
 * day (a different mix of questions at night) hits both arms alike within a step, but a step change
 * shifts the canary's weight toward the later hours. Over hours-long steps this is a small effect next
 * to the noise; a route with strong daily swings should use shorter steps or a step-local window.
 */
import { DEFAULT_SEQUENTIAL_CONFIG, type SequentialConfig } from './config';
import { cleanPair, cleanSteps } from './arm';
import { finite } from './format';
import {
  badEventAlpha,
  badEventTest,
  errorGate,
  finalGate,
  qualityDifference,
  qualityTest,
  type Stats,
} from './sequential-tests';
import { nextShareBps } from './steps';
import type { Decision, PolicyInput } from './types';

/** Tests a policy resolved before they existed has no alpha for (a running rollout keeps its policy). */
const OPTIONAL_TESTS = ['refusals', 'attemptErrors'] as const;

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
  const previous = cleanSteps(input.previousSteps);
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
  // Refusals and attempt errors before slow requests: when several fire at once, the first reason is the
  // one the rollback alert leads with, and a retried failure is also slow (the slowness is its symptom).
  const tests = [
    qualityTest(cum, diff, config, stats),
    badEventTest('errors', cum, step, config, stats, previous),
    ...OPTIONAL_TESTS.filter((kind) => badEventAlpha(config, kind) !== undefined).map((kind) =>
      badEventTest(kind, cum, step, config, stats, previous),
    ),
    badEventTest('slow', cum, step, config, stats, previous),
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
    const errors = errorGate(cum, step, config, stats, previous);
    if (errors) {
      reasons.push(errors.reason);
      if (!errors.passed) return decision('hold', reasons, stats);
    }
  }
  reasons.push(`promotion: step sample reached, no evidence of harm → ${context.shareBps} → ${next} bps`);
  return decision('promote-step', reasons, stats);
}
