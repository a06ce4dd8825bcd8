/**
 * The canary decision: `decide()` turns cumulative and per-step statistics of stable vs canary into
 * promote-step | hold | rollback, with reasons. Pure and deterministic, so the rollout workflow calls
 * it directly and its event history records every decision with the numbers behind it.
 *
 *   sequential (default)  always-valid tests; false-rollback rate ≤ alpha per rollout   sequential.ts
 *   ratio                 the seed's 0.95 / 0.99 rules, kept for comparison             ratio.ts
 *
 * Also here: shadow comparison analysis (shadow.ts) and absolute rollback triggers (triggers.ts).
 */
import { estimateHold, type HoldEstimate, type HoldEstimateInput } from './estimate';
import { decideRatio } from './ratio';
import type { ResolvedPolicy } from './resolve';
import { decideSequential } from './sequential';
import type { Decision, PolicyInput } from './types';

export interface DecideInput extends PolicyInput {
  /** The rollout's policy, resolved once when it started (resolve.ts). */
  policy: ResolvedPolicy;
}

/** One canary check, by the rollout's resolved policy. */
export function decide(input: DecideInput): Decision {
  return input.policy.policy === 'ratio'
    ? decideRatio(input, input.policy.ratio)
    : decideSequential(input, input.policy.sequential);
}

/**
 * How long the current hold will last (estimate.ts), for the sequential policy; null for the ratio policy
 * or when nothing holds the step.
 */
export function estimate(input: HoldEstimateInput & { policy: ResolvedPolicy }): HoldEstimate | null {
  return input.policy.policy === 'sequential' ? estimateHold(input, input.policy.sequential) : null;
}

export * from './types';
export * from './config';
export { resolvePolicy, type ResolvedPolicy } from './resolve';
export { cleanArm, cleanPair } from './arm';
export { decideRatio } from './ratio';
export { decideSequential } from './sequential';
export { nextShareBps } from './steps';
export {
  estimateHold,
  roughCount,
  roughDuration,
  type HoldBlocker,
  type HoldCondition,
  type HoldEstimate,
  type HoldEstimateInput,
} from './estimate';
export {
  normalMixtureBoundary,
  normalMixtureLogE,
  meanDifference,
  mixtureRho,
  upperConfidenceBound,
  lowerConfidenceBound,
  type MeanSummary,
  type MeanDifference,
  type OneSidedBound,
  type VarianceGuards,
} from './confidence-sequence';
export { badEventMixture, type BadEventSegment, type BadEventEvidence } from './bad-event-test';
export * from './shadow';
export * from './triggers';
export * from './statistics';
export * from './deadlines';
export * from './guardian-comparison';
