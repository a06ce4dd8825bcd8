import { describe, expect, it } from 'vitest';
import {
  badEventMixture,
  binomialCdf,
  logChoose,
  logGamma,
  logNormalCdf,
  logSumExp,
  lowerConfidenceBound,
  meanDifference,
  normalCdf,
  normalMixtureBoundary,
  normalMixtureLogE,
  normalQuantile,
  signTest,
  upperConfidenceBound,
  wilsonInterval,
} from '../../src/decision/policy/index';

/** Relative closeness, for values spanning many orders of magnitude. */
function expectRel(actual: number, expected: number, tol: number) {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(tol * Math.abs(expected));
}

/** Small seeded PRNG for the Monte Carlo checks (mulberry32). */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('normal distribution', () => {
  // Reference values: Python 3.11 `0.5 * math.erfc(-x / math.sqrt(2))`.
  it.each([
    [0, 0.5],
    [1, 0.8413447460685429],
    [-1.96, 0.024997895148220435],
    [-3, 0.0013498980316300957],
    [-5, 2.866515718791946e-7],
    [-7.5, 3.19089167291092e-14],
    [-10, 7.619853024160593e-24],
    [-30, 4.906713927148764e-198],
  ])('Φ(%d) matches the reference', (x, expected) => {
    expectRel(normalCdf(x), expected, 1e-8);
  });

  it('is symmetric, saturates, and passes NaN through', () => {
    for (const x of [0.1, 0.7, 1.5, 2.5, 4, 6.5]) expect(normalCdf(x) + normalCdf(-x)).toBeCloseTo(1, 15);
    expect(normalCdf(-40)).toBe(0);
    expect(normalCdf(40)).toBe(1);
    expect(normalCdf(NaN)).toBeNaN();
  });

  // Reference values: Python 3.11 `statistics.NormalDist().inv_cdf(p)`.
  it.each([
    [0.5, 0],
    [0.975, 1.9599639845400536],
    [0.01, -2.3263478740408408],
    [0.001, -3.090232306167813],
    [1e-10, -6.361340902404056],
    [1e-20, -9.262340089798405],
  ])('Φ⁻¹(%d) matches the reference', (p, expected) => {
    if (expected === 0) expect(normalQuantile(p)).toBeCloseTo(0, 15);
    else expectRel(normalQuantile(p), expected, 1e-9);
  });

  it('Φ⁻¹ handles the edges and round-trips', () => {
    expect(normalQuantile(0)).toBe(-Infinity);
    expect(normalQuantile(1)).toBe(Infinity);
    expect(normalQuantile(-0.1)).toBeNaN();
    expect(normalQuantile(1.1)).toBeNaN();
    for (const p of [0.001, 0.02, 0.3, 0.6, 0.99, 0.999])
      expect(normalCdf(normalQuantile(p))).toBeCloseTo(p, 14);
  });

  it('log Φ is continuous where it switches to the asymptotic series, and finite far out', () => {
    const left = logNormalCdf(-37.0000001);
    const right = logNormalCdf(-36.9999999);
    expect(Math.abs(left - right)).toBeLessThan(1e-5);
    expectRel(logNormalCdf(-30), Math.log(4.906713927148764e-198), 1e-12);
    // Φ(−40) underflows; reference from log φ(40) − log(Laplace continued fraction, 60 terms) in Python.
    expectRel(logNormalCdf(-40), -804.6084420137538, 1e-14);
    expect(Number.isFinite(logNormalCdf(-1e6))).toBe(true);
    expect(logNormalCdf(5)).toBeCloseTo(Math.log(normalCdf(5)), 15);
  });
});

describe('gamma and binomial', () => {
  it('log Γ matches known values', () => {
    expect(logGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 13);
    expect(logGamma(1)).toBeCloseTo(0, 14);
    expect(logGamma(2)).toBeCloseTo(0, 14);
    expect(logGamma(10)).toBeCloseTo(Math.log(362880), 12);
    expectRel(logGamma(100.5), 361.4355404677776, 1e-14); // Python math.lgamma(100.5)
    expect(logGamma(0)).toBeNaN();
  });

  it('log C(n, k)', () => {
    expect(Math.exp(logChoose(10, 3))).toBeCloseTo(120, 9);
    expect(logChoose(5, 0)).toBe(0);
    expect(logChoose(5, 6)).toBe(-Infinity);
  });

  it('binomial CDF', () => {
    expect(binomialCdf(1, 10, 0.5)).toBeCloseTo(11 / 1024, 14);
    expect(binomialCdf(-1, 10, 0.5)).toBe(0);
    expect(binomialCdf(10, 10, 0.5)).toBe(1);
    expect(binomialCdf(0, 10, 0)).toBe(1);
    expect(binomialCdf(3, 10, 1)).toBe(0);
  });

  it('logSumExp avoids overflow', () => {
    expect(logSumExp([1000, 1000])).toBeCloseTo(1000 + Math.LN2, 12);
    expect(logSumExp([])).toBe(-Infinity);
    expect(logSumExp([-Infinity, 0])).toBe(0);
  });
});

describe('Wilson score interval', () => {
  // Known values (z = 1.959964): 0/10 → [0, 0.2775], 5/10 → [0.2366, 0.7634], 8/10 → [0.4902, 0.9433].
  it.each([
    [0, 10, 0, 0.2775327998628892],
    [5, 10, 0.236593090512564, 0.7634069094874361],
    [8, 10, 0.4901624715366418, 0.9433178485456248],
  ])('%d/%d', (k, n, lower, upper) => {
    const w = wilsonInterval(k, n);
    expect(w.lower).toBeCloseTo(lower, 10);
    expect(w.upper).toBeCloseTo(upper, 10);
  });

  it('0/n upper bound is z²/(n + z²), n/n upper bound is 1, and no trials is [0, 1]', () => {
    const z2 = 1.959963984540054 ** 2;
    expect(wilsonInterval(0, 10).upper).toBeCloseTo(z2 / (10 + z2), 12);
    expect(wilsonInterval(10, 10).upper).toBe(1);
    expect(wilsonInterval(0, 0)).toEqual({ lower: 0, upper: 1, center: 0.5 });
  });

  it('narrows with more data and widens with more confidence', () => {
    const small = wilsonInterval(30, 100);
    const large = wilsonInterval(300, 1000);
    expect(large.upper - large.lower).toBeLessThan(small.upper - small.lower);
    const c99 = wilsonInterval(30, 100, 0.99);
    expect(c99.upper - c99.lower).toBeGreaterThan(small.upper - small.lower);
  });
});

describe('sign test', () => {
  // Reference values: Python, exact 2·P(X ≤ min(w, l)) for X ~ Binomial(w + l, ½).
  it.each([
    [9, 1, 0.021484375],
    [15, 5, 0.04138946533203125],
    [60, 30, 0.002060265680963076],
    [30, 60, 0.002060265680963076],
    [12, 8, 0.5034446716308594],
  ])('exact p-value for %d vs %d', (w, l, p) => {
    const r = signTest(w, l);
    expect(r.method).toBe('exact');
    expectRel(r.pValue, p, 1e-10);
  });

  it('is 1 without decisive pairs or when balanced', () => {
    expect(signTest(0, 0).pValue).toBe(1);
    expect(signTest(5, 5).pValue).toBe(1);
  });

  it('switches to the continuity-corrected normal approximation for large n', () => {
    const r = signTest(130, 90);
    expect(r.method).toBe('normal');
    expect(r.pValue).toBeCloseTo(0.008554085071697613, 12); // 2·(1 − Φ(39/√220))
    expect(Math.abs(r.pValue - 0.008405451752681956)).toBeLessThan(0.0005); // exact value
    expectRel(signTest(520, 480).pValue, 0.21744829320414094, 0.001);
    expect(signTest(130, 90, 1000).method).toBe('exact');
  });
});

describe('normal-mixture confidence sequence', () => {
  it('the boundary is where the mixture martingale reaches 1/α', () => {
    for (const [info, rho, alpha] of [
      [10, 2, 0.005],
      [60, 2, 0.005],
      [1500, 51, 0.05],
      [1e6, 1, 0.01],
    ]) {
      const b = normalMixtureBoundary(info, rho, alpha);
      expect(normalMixtureLogE(b, info, rho)).toBeCloseTo(-Math.log(alpha), 9);
    }
  });

  it('widens for smaller α and grows slower than linearly in information', () => {
    expect(normalMixtureBoundary(60, 2, 0.001)).toBeGreaterThan(normalMixtureBoundary(60, 2, 0.01));
    const w1 = normalMixtureBoundary(100, 2, 0.01) / 100;
    const w2 = normalMixtureBoundary(10000, 2, 0.01) / 10000;
    expect(w2).toBeLessThan(w1 / 5); // half-width ~ sqrt(log I / I)
  });

  it('the e-value stays finite for overwhelming evidence either way', () => {
    expect(Number.isFinite(normalMixtureLogE(1e9, 10, 1))).toBe(true);
    expect(Number.isFinite(normalMixtureLogE(-1e9, 10, 1))).toBe(true);
    expect(normalMixtureLogE(-1e4, 10, 1)).toBeLessThan(0);
  });

  it('is valid under continuous monitoring: an equal difference crosses with probability ≤ α', () => {
    // Gaussian observations, one per look, 400 looks, 4000 paths. A fixed 2.33σ test would cross ~12%.
    const next = rng(42);
    const alpha = 0.05;
    let crossed = 0;
    const paths = 4000;
    for (let p = 0; p < paths; p++) {
      let sum = 0;
      for (let n = 1; n <= 400; n++) {
        const u1 = next() || 1e-12;
        sum += Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * next());
        // S = sum of N(0,1) observations, information I = n (unit variance).
        if (sum >= normalMixtureBoundary(n, 0.5, alpha)) {
          crossed++;
          break;
        }
      }
    }
    expect(crossed / paths).toBeLessThanOrEqual(alpha);
  });

  it('difference of means: variance floor, shrinkage and the bounds', () => {
    const guards = { stdFloorRel: 0.05, variancePriorWeight: 10 };
    // Both arms all 5s: zero variance is floored at (0.05·5)² and the difference is 0.
    const same = meanDifference({ n: 50, mean: 5, variance: 0 }, { n: 500, mean: 5, variance: 0 }, guards)!;
    expect(same.canaryVariance).toBeCloseTo(0.0625, 12);
    expect(same.stableVariance).toBeCloseTo(0.0625, 12);
    expect(upperConfidenceBound(same, 1, 0.005).bound).toBeGreaterThan(0);
    expect(lowerConfidenceBound(same, 1, 0.005).bound).toBeLessThan(0);
    // One canary score: its variance comes entirely from stable's.
    const one = meanDifference({ n: 1, mean: 4, variance: null }, { n: 100, mean: 5, variance: 2 }, guards)!;
    expect(one.canaryVariance).toBeCloseTo(2, 12);
    // Not computable without two stable scores.
    expect(
      meanDifference({ n: 10, mean: 4, variance: 1 }, { n: 1, mean: 5, variance: null }, guards),
    ).toBeNull();
    expect(
      meanDifference({ n: 0, mean: 0, variance: null }, { n: 10, mean: 5, variance: 1 }, guards),
    ).toBeNull();
  });
});

describe('bad-event mixture likelihood ratio', () => {
  it('matches the closed form for one ratio', () => {
    // r = 2, p = ½, 3 canary and 0 stable bad events: LR = 2³ / 1.5³.
    const e = badEventMixture(
      [{ canaryBad: 3, canaryRequests: 100, stableBad: 0, stableRequests: 100 }],
      [2],
    );
    expect(e.logLR).toBeCloseTo(3 * Math.log(4 / 3), 12);
    expect(e.expectedCanaryBad).toBeCloseTo(1.5, 12);
  });

  it('is neutral without events or without a split', () => {
    expect(
      badEventMixture([{ canaryBad: 0, canaryRequests: 100, stableBad: 0, stableRequests: 900 }], [2, 3])
        .logLR,
    ).toBeCloseTo(0, 12);
    expect(
      badEventMixture([{ canaryBad: 0, canaryRequests: 0, stableBad: 0, stableRequests: 0 }], [2]).logLR,
    ).toBe(0);
    // All traffic on canary (p = 1): who got the events tells nothing.
    expect(
      badEventMixture([{ canaryBad: 5, canaryRequests: 10, stableBad: 0, stableRequests: 0 }], [2]).logLR,
    ).toBeCloseTo(0, 12);
  });

  it('grows with canary bad events and shrinks with stable ones', () => {
    const at = (c: number, s: number) =>
      badEventMixture(
        [{ canaryBad: c, canaryRequests: 500, stableBad: s, stableRequests: 9500 }],
        [1.5, 2, 3],
      ).logLR;
    let prev = -Infinity;
    for (let c = 0; c <= 40; c++) {
      const v = at(c, 95);
      expect(v).toBeGreaterThan(prev);
      prev = v;
    }
    expect(at(10, 200)).toBeLessThan(at(10, 100));
  });

  it('is valid under continuous monitoring: equal rates reach 1/α with probability ≤ α', () => {
    // Each bad event is canary with probability p = 0.1; check after every event, 300 events, 4000 runs.
    const next = rng(7);
    const alpha = 0.05;
    let rejected = 0;
    for (let run = 0; run < 4000; run++) {
      let canary = 0;
      for (let n = 1; n <= 300; n++) {
        if (next() < 0.1) canary++;
        const e = badEventMixture(
          [{ canaryBad: canary, canaryRequests: 100, stableBad: n - canary, stableRequests: 900 }],
          [1.5, 2, 3],
        );
        if (e.logLR >= -Math.log(alpha)) {
          rejected++;
          break;
        }
      }
    }
    expect(rejected / 4000).toBeLessThanOrEqual(alpha);
  });
});
