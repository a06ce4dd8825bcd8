/**
 * Candidate against stable on the same items: pass rates and a one-sided confidence bound on their
 * difference. The items are paired (both models answer each one), so only the items where they disagree
 * carry information: `gained` (candidate passes, stable fails) and `lost` (the reverse). The bound is the
 * Agresti-Min adjusted Wald interval for a paired difference (half a pseudo-count in each discordant cell),
 * which keeps its coverage on the small counts of a dataset of tens of items and never claims certainty
 * from zero disagreements.
 */
export interface PairedOutcome {
  candidate: boolean;
  stable: boolean;
}

export interface EvalComparison {
  items: number;
  candidatePassed: number;
  stablePassed: number;
  candidateRate: number;
  stableRate: number;
  gained: number;
  lost: number;
  /** candidateRate - stableRate. */
  diff: number;
  /** With `confidence`, the candidate is at most this much worse than stable (a negative number when worse). */
  lowerBound: number;
  confidence: number;
  margin: number;
  /** The lower bound clears `-margin`: the candidate is not worse than stable by more than the margin. */
  pass: boolean;
  summary: string;
}

/** The one-sided normal quantile for the confidences a team would pick (no inverse-erf needed). */
const Z: Record<string, number> = {
  '0.8': 0.8416,
  '0.9': 1.2816,
  '0.95': 1.6449,
  '0.975': 1.96,
  '0.99': 2.3263,
};

export function zFor(confidence: number): number {
  const z = Z[String(confidence)];
  if (z === undefined) throw new Error(`confidence must be one of ${Object.keys(Z).join(', ')}`);
  return z;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export function compareArms(
  outcomes: readonly PairedOutcome[],
  options: { margin: number; confidence?: number },
): EvalComparison {
  const confidence = options.confidence ?? 0.95;
  const z = zFor(confidence);
  const n = outcomes.length;
  const candidatePassed = outcomes.filter((o) => o.candidate).length;
  const stablePassed = outcomes.filter((o) => o.stable).length;
  const gained = outcomes.filter((o) => o.candidate && !o.stable).length;
  const lost = outcomes.filter((o) => !o.candidate && o.stable).length;
  const b = gained + 0.5;
  const c = lost + 0.5;
  const m = n + 2;
  const adjusted = (b - c) / m;
  const se = Math.sqrt(Math.max(0, b + c - (b - c) ** 2 / m)) / m;
  const lowerBound = n === 0 ? -1 : Math.max(-1, adjusted - z * se);
  const candidateRate = n ? candidatePassed / n : 0;
  const stableRate = n ? stablePassed / n : 0;
  const pass = n > 0 && lowerBound >= -options.margin;
  const summary =
    `candidate passed ${candidatePassed}/${n} (${pct(candidateRate)}), stable ${stablePassed}/${n} (${pct(stableRate)}); ` +
    `${gained} gained, ${lost} lost; ${Math.round(confidence * 100)}% lower bound of the difference ${pct(lowerBound)} ` +
    `${pass ? '≥' : '<'} −${pct(options.margin)} → ${pass ? 'not worse than stable by more than the margin' : 'candidate may be worse than stable by more than the margin'}`;
  return {
    items: n,
    candidatePassed,
    stablePassed,
    candidateRate,
    stableRate,
    gained,
    lost,
    diff: candidateRate - stableRate,
    lowerBound,
    confidence,
    margin: options.margin,
    pass,
    summary,
  };
}
