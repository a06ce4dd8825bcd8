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
import {
  DEFAULT_RATIO_CONFIG,
  DEFAULT_SEQUENTIAL_CONFIG,
  resolveRatioConfig,
  resolveSequentialConfig,
  type PolicyConfig,
  type SequentialConfig,
} from './config';
import { estimateHold, type HoldEstimate, type HoldEstimateInput } from './estimate';
import { decideRatio } from './ratio';
import { decideSequential } from './sequential';
import type { Decision, PolicyInput } from './types';

export interface DecideInput extends PolicyInput {
  config?: PolicyConfig;
}

/**
 * One canary check. `config.policy` picks the policy (default 'sequential'); its settings are merged
 * onto the defaults and validated (an invalid config throws, deterministically — validate it when the
 * rollout starts with `resolveSequentialConfig` / `resolveRatioConfig`).
 */
export function decide(input: DecideInput): Decision {
  const config = input.config ?? {};
  if ((config.policy ?? 'sequential') === 'ratio') {
    return decideRatio(input, config.ratio ? resolveRatioConfig(config.ratio) : DEFAULT_RATIO_CONFIG);
  }
  return decideSequential(input, sequentialConfigOf(config));
}

/** The resolved sequential settings of a policy config (the defaults merged with its overrides). */
export function sequentialConfigOf(config: PolicyConfig = {}): SequentialConfig {
  return config.sequential ? resolveSequentialConfig(config.sequential) : DEFAULT_SEQUENTIAL_CONFIG;
}

/**
 * How long the current hold will last (estimate.ts), for the sequential policy; null for the ratio policy
 * or when nothing holds the step.
 */
export function estimate(input: HoldEstimateInput & { config?: PolicyConfig }): HoldEstimate | null {
  const config = input.config ?? {};
  if ((config.policy ?? 'sequential') !== 'sequential') return null;
  return estimateHold(input, sequentialConfigOf(config));
}

export * from './types';
export * from './config';
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
