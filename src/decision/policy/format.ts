/** Number formatting for decision reasons, and the JSON-safety guard for decision stats. */

/** Finite numbers pass; NaN and ±Infinity become null (decision stats must survive JSON). */
export function finite(x: number | null | undefined): number | null {
  return typeof x === 'number' && Number.isFinite(x) ? x : null;
}

/** Fixed decimals with an explicit sign for differences: "+0.12", "−0.70". */
export function signed(x: number, digits = 2): string {
  const s = Math.abs(x).toFixed(digits);
  if (Number(s) === 0) return s;
  return (x < 0 ? '−' : '+') + s;
}

export function fixed(x: number | null, digits = 2): string {
  return x === null || !Number.isFinite(x) ? 'n/a' : x.toFixed(digits);
}

/** 0.0312 → "3.12%". */
export function percent(x: number | null, digits = 2): string {
  return x === null || !Number.isFinite(x) ? 'n/a' : `${(x * 100).toFixed(digits)}%`;
}

/** Signed percentage for relative differences: −0.031 → "−3.1%". */
export function signedPercent(x: number | null, digits = 1): string {
  return x === null || !Number.isFinite(x) ? 'n/a' : `${signed(x * 100, digits)}%`;
}

/** Confidence level of a one-sided bound at α, e.g. 0.005 → "99.5%". */
export function confidenceLabel(alpha: number): string {
  return `${Number(((1 - alpha) * 100).toPrecision(6))}%`;
}
