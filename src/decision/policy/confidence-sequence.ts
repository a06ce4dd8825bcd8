/**
 * Always-valid confidence bounds for the difference of two means (canary − stable).
 *
 * Why not a t-test: the rollout checks every 5 minutes for days. A fixed-sample test re-run that often
 * rejects a perfectly good candidate with probability far above its nominal α (a one-sided 1% z-test
 * looked at 24 times rejects ~6% of equal candidates, at 288 looks — a day of 5-minute checks — ~12%). A confidence *sequence* is a bound that holds at
 * every check simultaneously: P(∃ t: δ > U_t) ≤ α, however often you look and whenever you stop.
 *
 * Construction (Robbins' normal mixture; Howard et al. 2021, "Time-uniform, nonparametric,
 * nonasymptotic confidence sequences", §3; the two-sample form is Johari et al.'s mSPRT):
 * with D the observed difference of means and I = 1 / Var(D) its information, S = (D − δ)·I behaves
 * like a Brownian motion in "time" I. Mixing exp(θS − θ²I/2) over θ ~ half-normal(0, τ²) gives a
 * nonnegative martingale
 *
 *     M(S, I) = 2 · sqrt(ρ / (I + ρ)) · exp(S² / (2(I + ρ))) · Φ(S / sqrt(I + ρ)),   ρ = 1 / τ²,
 *
 * and Ville's inequality gives P(∃ t: M ≥ 1/α) ≤ α. Solving M = 1/α for S gives the boundary b(I),
 * and so the one-sided bounds D ± b(I) / I. τ is the effect size the sequence is tuned for: it is
 * tightest when the evidence arrives at about the information needed to see an effect of size τ.
 *
 * Variances are estimated (an asymptotic confidence sequence in the sense of Waudby-Smith et al.
 * 2021): hence a minimum sample, a variance floor, and shrinkage of the small canary arm's variance
 * toward the stable one's. The bench measures the resulting false-rollback rate directly.
 */
import { logNormalCdf, normalCdf, normalPdf } from './statistics';

/**
 * One-sided normal-mixture boundary b(I): the S at which M(S, I) = 1/α. The CS half-width in units of
 * the mean is b(I) / I. Requires 0 < α < 0.5, I > 0, ρ > 0.
 */
export function normalMixtureBoundary(information: number, rho: number, alpha: number): number {
  const v = information + rho;
  // In x = S / sqrt(I + ρ): x²/2 + log Φ(x) = log(1/α) − log 2 + ½ log((I + ρ)/ρ) =: c.
  const c = -Math.log(alpha) - Math.LN2 + 0.5 * Math.log(v / rho);
  // The left side is increasing and ≤ x²/2, so the root is ≥ sqrt(2c). Newton from there converges in
  // 2-4 steps (log Φ(x) is nearly flat for x > 2).
  let x = Math.sqrt(2 * Math.max(c, 0));
  for (let i = 0; i < 50; i++) {
    const phi = normalCdf(x);
    const f = 0.5 * x * x + Math.log(phi) - c;
    const step = f / (x + normalPdf(x) / phi);
    x -= step;
    if (Math.abs(step) < 1e-12 * (1 + Math.abs(x))) break;
  }
  return x * Math.sqrt(v);
}

/**
 * log M(S, I): the mixture martingale itself, i.e. the e-value (likelihood ratio of "shifted by ≥ the
 * effect" against "not shifted") at evidence S and information I. M ≥ 1/α exactly when S ≥ b(I).
 * Used to tell "the data lean toward worse" (M ≥ 1) from "no sign of harm" (M < 1).
 */
export function normalMixtureLogE(s: number, information: number, rho: number): number {
  const v = information + rho;
  const x = s / Math.sqrt(v);
  // x²/2 + log Φ(x) cancels for very negative x; logNormalCdf keeps it finite there.
  return Math.LN2 + 0.5 * Math.log(rho / v) + 0.5 * x * x + logNormalCdf(x);
}

/** Summary of one arm's scores. */
export interface MeanSummary {
  n: number;
  mean: number;
  /** Sample variance; null when n < 2. */
  variance: number | null;
}

export interface VarianceGuards {
  /** Standard-deviation floor as a fraction of |stable mean| (plus a tiny absolute floor). */
  stdFloorRel: number;
  /** Pseudo-observations of the stable variance mixed into the canary's. */
  variancePriorWeight: number;
}

export interface MeanDifference {
  /** canary mean − stable mean. */
  diff: number;
  /** Variance of `diff` as used (after floors and shrinkage). */
  varianceOfDiff: number;
  /** 1 / varianceOfDiff. */
  information: number;
  canaryVariance: number;
  stableVariance: number;
}

/**
 * The difference of means and its variance, with the guards that keep a noisy or degenerate
 * variance estimate from producing a confident-looking bound:
 * - canary variance shrunk toward stable's: ((n_c − 1)s_c² + k·s_s²) / (n_c − 1 + k). Under the null
 *   both arms share a variance, and the stable estimate (19× the data) is far better early on;
 * - both variances floored at (stdFloorRel · |stable mean|)², so all-5s vs all-5s is no evidence and
 *   all-5s vs all-4s is a clear difference rather than an infinitely precise one.
 * Returns null when stable has fewer than 2 scores or canary none.
 */
export function meanDifference(
  canary: MeanSummary,
  stable: MeanSummary,
  guards: VarianceGuards,
): MeanDifference | null {
  if (stable.n < 2 || stable.variance === null || canary.n < 1) return null;
  const floor = Math.max(guards.stdFloorRel * Math.abs(stable.mean), 1e-9) ** 2;
  const stableVariance = Math.max(stable.variance, floor);
  const canaryDf = canary.variance === null ? 0 : canary.n - 1;
  const k = guards.variancePriorWeight;
  const pooledCanary =
    canaryDf + k > 0
      ? (canaryDf * (canary.variance ?? 0) + k * stableVariance) / (canaryDf + k)
      : stableVariance;
  const canaryVariance = Math.max(pooledCanary, floor);
  const varianceOfDiff = canaryVariance / canary.n + stableVariance / stable.n;
  return {
    diff: canary.mean - stable.mean,
    varianceOfDiff,
    information: 1 / varianceOfDiff,
    canaryVariance,
    stableVariance,
  };
}

export interface OneSidedBound {
  /** The bound on δ = canary − stable. */
  bound: number;
  /** Half-width b(I)/I. */
  halfWidth: number;
  /** Mixture precision ρ = 1/τ² used. */
  rho: number;
}

/** Mixture precision for an effect of `relEffect` × |stable mean| (never 0). */
export function mixtureRho(relEffect: number, stableMean: number): number {
  const tau = Math.max(relEffect * Math.abs(stableMean), 1e-9);
  return 1 / (tau * tau);
}

/** P(∃ t: δ > upper_t) ≤ α. */
export function upperConfidenceBound(d: MeanDifference, rho: number, alpha: number): OneSidedBound {
  const halfWidth = normalMixtureBoundary(d.information, rho, alpha) / d.information;
  return { bound: d.diff + halfWidth, halfWidth, rho };
}

/** P(∃ t: δ < lower_t) ≤ α. */
export function lowerConfidenceBound(d: MeanDifference, rho: number, alpha: number): OneSidedBound {
  const halfWidth = normalMixtureBoundary(d.information, rho, alpha) / d.information;
  return { bound: d.diff - halfWidth, halfWidth, rho };
}
