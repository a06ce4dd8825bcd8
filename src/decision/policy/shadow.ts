/**
 * Shadow comparison analysis: pairwise verdicts (judge compared the shadow answer with the stable answer
 * to the same request, positions swapped) turned into a recommendation with its confidence.
 *
 * The seed's rule, `better > worse * 1.5`, is reported beside it: it says nothing about how many
 * comparisons stand behind it (3 wins to 1 loss "promotes").
 *
 * The sign test and Wilson interval assume the number of comparisons was fixed in advance (analyse once,
 * at the end of the shadow phase). `anytimePValue` may be read as often as you like: it is 1/LR of a
 * uniform-prior binomial mixture (a Bayes factor), so P(it ever drops below α | H0) ≤ α.
 */
import { fixed, percent } from './format';
import { logGamma, signTest, wilsonInterval } from './statistics';

export interface ShadowVerdictCounts {
  shadowBetter: number;
  stableBetter: number;
  ties: number;
}

export interface ShadowOptions {
  /** Two-sided level of the sign test. Default 0.05. */
  alpha?: number;
  /** Confidence of the win-rate interval. Default 0.95. */
  confidence?: number;
  /** Below this many decisive pairs the recommendation is 'inconclusive'. Default 20. */
  minDecisive?: number;
  /** Exact binomial sign test up to this many decisive pairs, normal approximation above. Default 200. */
  exactUpTo?: number;
}

export type ShadowRecommendation = 'promote' | 'keep-stable' | 'inconclusive';

export interface ShadowAnalysis {
  comparisons: number;
  decisive: number;
  shadowBetter: number;
  stableBetter: number;
  ties: number;
  /** shadowBetter / decisive; null without decisive pairs. */
  winRate: number | null;
  winRateInterval: { lower: number; upper: number; confidence: number } | null;
  signTest: { pValue: number; method: 'exact' | 'normal'; z: number };
  /** Always-valid p-value (see module comment). */
  anytimePValue: number;
  recommendation: ShadowRecommendation;
  reasons: string[];
  /** The seed's rule, for comparison only. */
  seedRule: { rule: 'better > worse * 1.5'; recommendation: 'promote' | 'keep-stable' };
}

const cleanCount = (x: number) => (Number.isFinite(x) && x > 0 ? Math.floor(x) : 0);

/** 1 / (Beta(1,1)-mixture likelihood ratio against p = ½), capped at 1. */
function anytimeSignPValue(wins: number, losses: number): number {
  const n = wins + losses;
  // LR = 2^n · B(wins + 1, losses + 1) = 2^n · wins! losses! / (n + 1)!
  const logLR = n * Math.LN2 + logGamma(wins + 1) + logGamma(losses + 1) - logGamma(n + 2);
  return Math.min(1, Math.exp(-logLR));
}

export function analyzeShadow(counts: ShadowVerdictCounts, options: ShadowOptions = {}): ShadowAnalysis {
  const alpha = options.alpha ?? 0.05;
  const confidence = options.confidence ?? 0.95;
  const minDecisive = options.minDecisive ?? 20;
  const wins = cleanCount(counts.shadowBetter);
  const losses = cleanCount(counts.stableBetter);
  const ties = cleanCount(counts.ties);
  const decisive = wins + losses;
  const sign = signTest(wins, losses, options.exactUpTo ?? 200);
  const winRate = decisive > 0 ? wins / decisive : null;
  const wilson = decisive > 0 ? wilsonInterval(wins, decisive, confidence) : null;

  const reasons = [
    `shadow: ${wins} better, ${losses} worse, ${ties} ties over ${wins + losses + ties} comparisons`,
  ];
  if (wilson) {
    reasons.push(
      `win rate among decisive pairs ${percent(winRate, 1)}, ${percent(confidence, 0)} Wilson interval ` +
        `[${percent(wilson.lower, 1)}, ${percent(wilson.upper, 1)}]`,
    );
  }
  reasons.push(`sign test (${sign.method}) two-sided p = ${fixed(sign.pValue, 4)}`);

  let recommendation: ShadowRecommendation = 'inconclusive';
  if (decisive < minDecisive) {
    reasons.push(`only ${decisive} decisive pairs (need ${minDecisive}) → inconclusive`);
  } else if (sign.pValue < alpha && wins > losses) {
    recommendation = 'promote';
    reasons.push(`shadow wins significantly (p < ${alpha}) → promote`);
  } else if (sign.pValue < alpha && losses > wins) {
    recommendation = 'keep-stable';
    reasons.push(`shadow loses significantly (p < ${alpha}) → keep stable`);
  } else {
    reasons.push(`no significant difference at ${alpha} → inconclusive`);
  }

  const seed = wins > losses * 1.5 ? 'promote' : 'keep-stable';
  reasons.push(`seed rule (better > worse × 1.5, no confidence attached): ${seed}`);

  return {
    comparisons: wins + losses + ties,
    decisive,
    shadowBetter: wins,
    stableBetter: losses,
    ties,
    winRate,
    winRateInterval: wilson ? { lower: wilson.lower, upper: wilson.upper, confidence } : null,
    signTest: sign,
    anytimePValue: anytimeSignPValue(wins, losses),
    recommendation,
    reasons,
    seedRule: { rule: 'better > worse * 1.5', recommendation: seed },
  };
}
