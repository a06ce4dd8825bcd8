/**
 * Always-valid one-sided test that the canary has MORE bad events (errors, slow requests) per request
 * than stable.
 *
 * Condition on the bad events that happened. Under H0 (same rate in both arms) each bad event is a
 * canary one with probability p = canary requests / all requests, whatever the common rate is, so no
 * nuisance parameter has to be estimated. If the canary's rate is r times stable's, that probability
 * becomes θ(r) = r·p / (r·p + 1 − p), and the likelihood ratio of b_c canary and b_s stable bad events is
 *
 *     LR(r) = (θ/p)^b_c · ((1−θ)/(1−p))^b_s = r^b_c / (1 + p(r − 1))^(b_c + b_s).
 *
 * Averaging LR(r) over a prior on r > 1 gives a test martingale (a mixture SPRT); by Ville's inequality
 * P(∃ t: LR ≥ 1/α | H0) ≤ α, so it may be checked every few minutes for days. The prior is a uniform
 * mix over a few rate ratios worth catching (default 1.5×, 2×, 3×): exact likelihoods, cheap, and it
 * costs only log(K) nats against knowing the true ratio. Larger ratios are caught by these too (a 5×
 * regression makes the 3× term grow fast), and absolute triggers cover outright breakage.
 *
 * The share p changes when the rollout steps up. The rate ratio r is the same at every share, so the
 * likelihood is a product over stretches of constant p, one per canary step, each at its own split. Each
 * step's factor is a test martingale in that step's bad events and changes only with them (a closed step
 * still takes its late events, served under its routing version), so the product is one test martingale
 * over the whole canary phase and Ville's bound covers every check of every step. (Rollouts from before per-step windows pool everything before the current step at its
 * average split. Each such value has expectation ≤ 1 under H0 by AM-GM, but it is recomputed at every
 * step change, so the sequence of values is not one supermartingale and the bound is not guaranteed;
 * test/unit/policy-segments.test.ts measures both.) Within a stretch,
 * conditioning on the total is exact for Poisson counts and conservative for binomial ones (the
 * hypergeometric is narrower than the binomial).
 */
import { logSumExp } from './statistics';

/** Bad events and requests in both arms over a stretch with (roughly) constant traffic split. */
export interface BadEventSegment {
  canaryBad: number;
  canaryRequests: number;
  stableBad: number;
  stableRequests: number;
}

export interface BadEventEvidence {
  /** log of the mixture likelihood ratio (≥ log(1/α) ⇒ reject H0 "canary no worse"). */
  logLR: number;
  /** The single rate ratio with the largest likelihood ratio (the mixture's main contributor). */
  bestRatio: number;
  canaryBad: number;
  canaryRequests: number;
  stableBad: number;
  stableRequests: number;
  /** Canary bad events expected under H0 given all bad events and the split(s). */
  expectedCanaryBad: number;
}

/** log LR(r) of one segment, given log r. */
function segmentLogLR(s: BadEventSegment, r: number, logR: number): number {
  const total = s.canaryRequests + s.stableRequests;
  const bad = s.canaryBad + s.stableBad;
  if (total <= 0 || bad <= 0) return 0;
  const p = s.canaryRequests / total;
  return s.canaryBad * logR - bad * Math.log1p(p * (r - 1));
}

/**
 * log LR of "canary rate = r × stable's" against "same rate", over segments. Its negative is the log LR of
 * "same rate" against "r×": a test martingale when the canary really is r× worse, which is what a
 * non-inferiority check ("shown not to be r× worse") needs.
 */
export function logLikelihoodRatio(segments: readonly BadEventSegment[], r: number): number {
  const logR = Math.log(r);
  let sum = 0;
  for (const s of segments) sum += segmentLogLR(s, r, logR);
  return sum;
}

export function badEventMixture(
  segments: readonly BadEventSegment[],
  rateRatios: readonly number[],
): BadEventEvidence {
  const perRatio = rateRatios.map((r) => logLikelihoodRatio(segments, r));
  let best = 0;
  for (let i = 1; i < perRatio.length; i++) if (perRatio[i] > perRatio[best]) best = i;
  const totals = { canaryBad: 0, canaryRequests: 0, stableBad: 0, stableRequests: 0, expectedCanaryBad: 0 };
  for (const s of segments) {
    totals.canaryBad += s.canaryBad;
    totals.canaryRequests += s.canaryRequests;
    totals.stableBad += s.stableBad;
    totals.stableRequests += s.stableRequests;
    const n = s.canaryRequests + s.stableRequests;
    if (n > 0) totals.expectedCanaryBad += ((s.canaryBad + s.stableBad) * s.canaryRequests) / n;
  }
  return {
    logLR: logSumExp(perRatio) - Math.log(perRatio.length),
    bestRatio: rateRatios[best],
    ...totals,
  };
}
