/**
 * Small, dependency-free statistics toolkit for the decision code: normal distribution, log-gamma,
 * binomial tails, the Wilson score interval and the sign test.
 *
 * Everything here is deterministic and pure (no Node built-ins, no packages) so that workflows can
 * import it. Accuracy matters more than speed: p-values and confidence bounds end up in rollback
 * reasons that people read. Φ has an absolute error below 1e-16 (relative below 1e-8 even in the far
 * tail), its inverse and log-gamma a relative error below 1e-10; test/unit/statistics.test.ts checks
 * them against values from Python's `math.erfc`, `math.lgamma` and `statistics.NormalDist`.
 */

const SQRT_2PI = 2.5066282746310002;

/** Standard normal density φ(x). */
export function normalPdf(x: number): number {
  return Math.exp(-0.5 * x * x) / SQRT_2PI;
}

/**
 * Standard normal CDF Φ(x), Hart's double-precision algorithm as published by West (2005),
 * "Better approximations to cumulative normal functions". Computed on the tail that is small, so
 * Φ(-30) is 4.9e-198 and not 0 from cancellation; exactly 0 (or 1) beyond |x| = 37.
 */
export function normalCdf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const z = Math.abs(x);
  let tail: number;
  if (z > 37) {
    tail = 0;
  } else {
    const e = Math.exp(-0.5 * z * z);
    if (z < 7.07106781186547) {
      let num = 3.52624965998911e-2 * z + 0.700383064443688;
      num = num * z + 6.37396220353165;
      num = num * z + 33.912866078383;
      num = num * z + 112.079291497871;
      num = num * z + 221.213596169931;
      num = num * z + 220.206867912376;
      let den = 8.83883476483184e-2 * z + 1.75566716318264;
      den = den * z + 16.064177579207;
      den = den * z + 86.7807322029461;
      den = den * z + 296.564248779674;
      den = den * z + 637.333633378831;
      den = den * z + 793.826512519948;
      den = den * z + 440.413735824752;
      tail = (e * num) / den;
    } else {
      // Far tail: Laplace's continued fraction, 20 terms (West uses 4; 20 gives 1e-14).
      let cf = z;
      for (let k = 20; k >= 1; k--) cf = z + k / cf;
      tail = e / cf / SQRT_2PI;
    }
  }
  return x > 0 ? 1 - tail : tail;
}

/**
 * log Φ(x), finite for every finite x: below x = -37, where Φ underflows, it uses the asymptotic series
 * log Φ(x) = -x²/2 - log(-x) - ½ log 2π + log(1 - 1/x² + 3/x⁴ - 15/x⁶ + 105/x⁸), exact to ~1e-13 there.
 */
export function logNormalCdf(x: number): number {
  if (x >= -37) return Math.log(normalCdf(x));
  const t = 1 / (x * x);
  const series = t * (-1 + t * (3 + t * (-15 + t * 105)));
  return -0.5 * x * x - Math.log(-x) - 0.5 * Math.log(2 * Math.PI) + Math.log1p(series);
}

/** Upper tail 1 - Φ(x), without cancellation for large x. */
export function normalSurvival(x: number): number {
  return normalCdf(-x);
}

// Acklam's coefficients for Φ⁻¹: central region (A/B) and tails (C/D).
const ACKLAM_A = [
  -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
  2.506628277459239,
];
const ACKLAM_B = [
  -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
];
const ACKLAM_C = [
  -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
  2.938163982698783,
];
const ACKLAM_D = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];

/**
 * Standard normal quantile Φ⁻¹(p): Acklam's rational approximation (relative error 1.2e-9) polished
 * by one Halley step against `normalCdf`, which brings the relative error to about 1e-15 in the
 * centre and below 1e-10 everywhere between p = 1e-200 and 1 - 1e-16.
 */
export function normalQuantile(p: number): number {
  if (Number.isNaN(p) || p < 0 || p > 1) return NaN;
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  const [a, b, c, d] = [ACKLAM_A, ACKLAM_B, ACKLAM_C, ACKLAM_D];
  const pLow = 0.02425;
  let x: number;
  if (p < pLow) {
    const q = Math.sqrt(-2 * Math.log(p));
    x =
      (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - pLow) {
    const q = p - 0.5;
    const r = q * q;
    x =
      ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
      (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x =
      -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  // One Halley step. Work on the smaller tail so the error term keeps its precision.
  const err = x < 0 ? normalCdf(x) - p : 1 - p - normalSurvival(x);
  const u = err * SQRT_2PI * Math.exp(0.5 * x * x);
  return x - u / (1 + 0.5 * x * u);
}

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** log Γ(x) for x > 0 (Lanczos, g = 7, n = 9; relative error about 1e-15). */
export function logGamma(x: number): number {
  if (!(x > 0)) return NaN;
  if (x < 0.5) {
    // Reflection keeps the approximation in its accurate range.
    return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  }
  const z = x - 1;
  let sum = LANCZOS[0];
  for (let i = 1; i < LANCZOS.length; i++) sum += LANCZOS[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** log of the binomial coefficient C(n, k). */
export function logChoose(n: number, k: number): number {
  if (k < 0 || k > n) return -Infinity;
  if (k === 0 || k === n) return 0;
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

/** log(Σ exp(xᵢ)) without overflow. */
export function logSumExp(values: readonly number[]): number {
  let max = -Infinity;
  for (const v of values) if (v > max) max = v;
  if (max === -Infinity || max === Infinity) return max;
  let sum = 0;
  for (const v of values) sum += Math.exp(v - max);
  return max + Math.log(sum);
}

/** P(X ≤ k) for X ~ Binomial(n, p), summed in log space term by term (exact for moderate n). */
export function binomialCdf(k: number, n: number, p: number): number {
  if (k < 0) return 0;
  if (k >= n) return 1;
  if (p <= 0) return 1;
  if (p >= 1) return 0;
  const logP = Math.log(p);
  const logQ = Math.log1p(-p);
  const terms: number[] = [];
  for (let i = 0; i <= k; i++) terms.push(logChoose(n, i) + i * logP + (n - i) * logQ);
  return Math.min(1, Math.exp(logSumExp(terms)));
}

export interface Interval {
  lower: number;
  upper: number;
}

/**
 * Wilson score interval for a binomial proportion. Unlike the Wald interval it stays inside [0, 1]
 * and keeps close to its nominal coverage for small n and proportions near 0 or 1.
 */
export function wilsonInterval(
  successes: number,
  trials: number,
  confidence = 0.95,
): Interval & { center: number } {
  if (!(trials > 0)) return { lower: 0, upper: 1, center: 0.5 };
  const z = normalQuantile(1 - (1 - confidence) / 2);
  const phat = successes / trials;
  const z2n = (z * z) / trials;
  const denom = 1 + z2n;
  const center = (phat + z2n / 2) / denom;
  const half = (z / denom) * Math.sqrt((phat * (1 - phat)) / trials + z2n / (4 * trials));
  // Mathematically 0/n has lower bound 0 and n/n upper bound 1; do not let rounding say otherwise.
  const lower = successes <= 0 ? 0 : Math.max(0, center - half);
  const upper = successes >= trials ? 1 : Math.min(1, center + half);
  return { lower, upper, center };
}

export interface SignTestResult {
  /** Two-sided p-value for H0: each decisive pair is equally likely to go either way. */
  pValue: number;
  method: 'exact' | 'normal';
  /** Continuity-corrected z statistic (reported for both methods; 0 when n = 0). */
  z: number;
}

/**
 * Two-sided sign test on the decisive pairs (ties excluded). Exact binomial tail up to `exactUpTo`
 * pairs, above that the normal approximation with continuity correction (its error is then < 1e-3).
 */
export function signTest(wins: number, losses: number, exactUpTo = 200): SignTestResult {
  const n = wins + losses;
  if (n <= 0) return { pValue: 1, method: 'exact', z: 0 };
  const z = Math.max(0, Math.abs(wins - losses) - 1) / Math.sqrt(n);
  if (n <= exactUpTo) {
    const pValue = Math.min(1, 2 * binomialCdf(Math.min(wins, losses), n, 0.5));
    return { pValue, method: 'exact', z };
  }
  return { pValue: Math.min(1, 2 * normalSurvival(z)), method: 'normal', z };
}
