import { describe, expect, it } from 'vitest';
import { analyzeShadow } from '../../src/decision/policy/index';

describe('shadow comparison analysis', () => {
  it('3 better vs 1 worse: the seed says promote, the analysis says inconclusive', () => {
    const a = analyzeShadow({ shadowBetter: 3, stableBetter: 1, ties: 6 });
    expect(a.seedRule).toEqual({ rule: 'better > worse * 1.5', recommendation: 'promote' });
    expect(a.recommendation).toBe('inconclusive');
    expect(a.comparisons).toBe(10);
    expect(a.decisive).toBe(4);
    expect(a.winRate).toBe(0.75);
    expect(a.signTest.pValue).toBeCloseTo(0.625, 12); // 2·P(X ≤ 1), X ~ Bin(4, ½) = 2·5/16
    expect(a.reasons.join('\n')).toMatch(/only 4 decisive pairs \(need 20\)/);
  });

  it('60 vs 30: significant win, with a Wilson interval on the win rate', () => {
    const a = analyzeShadow({ shadowBetter: 60, stableBetter: 30, ties: 10 });
    expect(a.recommendation).toBe('promote');
    expect(a.signTest.method).toBe('exact');
    expect(a.signTest.pValue).toBeCloseTo(0.002060265680963076, 12); // exact, Python
    expect(a.winRateInterval!.lower).toBeGreaterThan(0.5);
    expect(a.winRateInterval!.upper).toBeLessThan(0.8);
    expect(a.winRateInterval!.confidence).toBe(0.95);
    expect(a.seedRule.recommendation).toBe('promote');
  });

  it('significant loss → keep stable', () => {
    const a = analyzeShadow({ shadowBetter: 30, stableBetter: 60, ties: 0 });
    expect(a.recommendation).toBe('keep-stable');
    expect(a.seedRule.recommendation).toBe('keep-stable');
  });

  it('55 vs 45 is not significant; the seed rule says keep stable (55 < 67.5)', () => {
    const a = analyzeShadow({ shadowBetter: 55, stableBetter: 45, ties: 0 });
    expect(a.recommendation).toBe('inconclusive');
    expect(a.seedRule.recommendation).toBe('keep-stable');
  });

  it('no comparisons, or only ties: inconclusive, p = 1, no win rate', () => {
    for (const counts of [
      { shadowBetter: 0, stableBetter: 0, ties: 0 },
      { shadowBetter: 0, stableBetter: 0, ties: 50 },
    ]) {
      const a = analyzeShadow(counts);
      expect(a.recommendation).toBe('inconclusive');
      expect(a.signTest.pValue).toBe(1);
      expect(a.anytimePValue).toBe(1);
      expect(a.winRate).toBeNull();
      expect(a.winRateInterval).toBeNull();
      expect(a.seedRule.recommendation).toBe('keep-stable'); // 0 > 0 is false
    }
  });

  it('large n uses the normal approximation', () => {
    const a = analyzeShadow({ shadowBetter: 520, stableBetter: 480, ties: 0 });
    expect(a.signTest.method).toBe('normal');
    expect(a.signTest.pValue).toBeCloseTo(0.2174682261435424, 10);
    expect(
      analyzeShadow({ shadowBetter: 520, stableBetter: 480, ties: 0 }, { exactUpTo: 2000 }).signTest.method,
    ).toBe('exact');
  });

  it('the anytime-valid p-value is more conservative than the fixed-n one', () => {
    for (const [w, l] of [
      [60, 30],
      [30, 10],
      [200, 150],
    ]) {
      const a = analyzeShadow({ shadowBetter: w, stableBetter: l, ties: 0 });
      expect(a.anytimePValue).toBeGreaterThan(a.signTest.pValue);
      expect(a.anytimePValue).toBeLessThanOrEqual(1);
    }
  });

  it('options: alpha, confidence and minimum decisive pairs', () => {
    const counts = { shadowBetter: 15, stableBetter: 5, ties: 0 }; // p = 0.0414
    expect(analyzeShadow(counts).recommendation).toBe('promote');
    expect(analyzeShadow(counts, { alpha: 0.01 }).recommendation).toBe('inconclusive');
    expect(analyzeShadow(counts, { minDecisive: 21 }).recommendation).toBe('inconclusive');
    const wide = analyzeShadow(counts, { confidence: 0.99 }).winRateInterval!;
    const narrow = analyzeShadow(counts).winRateInterval!;
    expect(wide.upper - wide.lower).toBeGreaterThan(narrow.upper - narrow.lower);
  });

  it('garbage counts are treated as zero', () => {
    const a = analyzeShadow({ shadowBetter: NaN, stableBetter: -4, ties: Infinity });
    expect(a.comparisons).toBe(0);
    expect(a.recommendation).toBe('inconclusive');
  });
});
