/**
 * The seed's canary rules, kept exactly as written so they can be compared with the default:
 *
 *     if canary.avg < stable.avg * 0.95:   rollback
 *     elif canary.avg >= stable.avg * 0.99: double the canary share
 *     (else hold)
 *
 * Known flaws (DESIGN.md): it ignores sample size and variance, and re-checking it every few minutes
 * rolls good candidates back on noise — with 2 canary scores the canary mean swings by ±1.4 points on
 * a 1-10 scale. bench/policy.ts measures how often. Only the "no data in an arm: hold" rule is added.
 */
import { cleanPair } from './arm';
import { DEFAULT_RATIO_CONFIG, type RatioConfig } from './config';
import { finite, fixed } from './format';
import { nextShareBps } from './steps';
import type { Decision, PolicyInput } from './types';

export function decideRatio(input: PolicyInput, config: RatioConfig = DEFAULT_RATIO_CONFIG): Decision {
  const arms = cleanPair(config.window === 'step' ? input.step : input.cumulative);
  const { stable, canary } = arms;
  const next = nextShareBps(input.context);
  const ratio =
    canary.qualityMean !== null && stable.qualityMean !== null && stable.qualityMean !== 0
      ? canary.qualityMean / stable.qualityMean
      : null;
  const stats: Decision['stats'] = {
    shareBps: input.context.shareBps,
    nextShareBps: next,
    window: config.window,
    'canary.scored': canary.scored,
    'stable.scored': stable.scored,
    'canary.mean': finite(canary.qualityMean),
    'stable.mean': finite(stable.qualityMean),
    ratio: finite(ratio),
    rollbackBelow: config.rollbackBelow,
    promoteAtOrAbove: config.promoteAtOrAbove,
  };
  const decision = (action: Decision['action'], reason: string): Decision => ({
    action,
    policy: 'ratio',
    reasons: [reason],
    stats,
  });
  if (input.context.shareBps >= 10000)
    return decision('hold', 'canary already serves 100%; nothing left to decide');
  if (canary.qualityMean === null || stable.qualityMean === null) {
    return decision(
      'hold',
      `ratio: no quality scores yet (canary n=${canary.scored}, stable n=${stable.scored})`,
    );
  }
  const c = canary.qualityMean;
  const s = stable.qualityMean;
  const means = `canary ${fixed(c, 3)} (n=${canary.scored}) vs stable ${fixed(s, 3)} (n=${stable.scored})`;
  if (c < s * config.rollbackBelow) {
    return decision(
      'rollback',
      `ratio: ${means}; canary < ${config.rollbackBelow} × stable = ${fixed(s * config.rollbackBelow, 3)}`,
    );
  }
  if (c >= s * config.promoteAtOrAbove) {
    return decision(
      'promote-step',
      `ratio: ${means}; canary ≥ ${config.promoteAtOrAbove} × stable = ${fixed(s * config.promoteAtOrAbove, 3)} → ${input.context.shareBps} → ${next} bps`,
    );
  }
  return decision(
    'hold',
    `ratio: ${means}; between ${config.rollbackBelow}× and ${config.promoteAtOrAbove}× stable → hold`,
  );
}
