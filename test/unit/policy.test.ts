import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RATIO_CONFIG,
  DEFAULT_SEQUENTIAL_CONFIG,
  DEFAULT_STEPS,
  decide as decideResolved,
  decideRatio,
  decideSequential,
  nextShareBps,
  resolveRatioConfig,
  resolvePolicy,
  resolveSequentialConfig,
  validateSteps,
  type ArmPair,
  type ArmStats,
  type Decision,
  type PolicyConfig,
  type PolicyInput,
  type StepContext,
} from '../../src/decision/policy/index';

/** A check as the workflow makes it: the config resolved (once, at start), earlier steps given. */
type DecideInput = Omit<PolicyInput, 'previousSteps'> &
  Partial<Pick<PolicyInput, 'previousSteps'>> & { config?: PolicyConfig };
const decide = ({ config, ...input }: DecideInput) =>
  decideResolved({ previousSteps: [], ...input, policy: resolvePolicy(config) });

// ───────────── helpers ─────────────

const EMPTY: ArmStats = {
  requests: 0,
  errors: 0,
  slow: 0,
  scored: 0,
  qualityMean: null,
  qualityVariance: null,
  costUsd: 0,
  p95LatencyMs: null,
};

/** An arm with `scored` scores of the given mean/variance, 4 requests per score, 1% errors, 5% slow. */
function arm(
  scored: number,
  mean: number | null,
  variance: number | null = 4,
  extra: Partial<ArmStats> = {},
): ArmStats {
  const requests = scored * 4;
  return {
    requests,
    errors: Math.round(requests * 0.01),
    slow: Math.round(requests * 0.05),
    scored,
    qualityMean: scored > 0 ? mean : null,
    qualityVariance: scored >= 2 ? variance : null,
    costUsd: requests * 0.002,
    p95LatencyMs: 1200,
    ...extra,
  };
}

function context(shareBps: number): StepContext {
  const steps = [...DEFAULT_STEPS];
  const stepIndex = Math.max(0, steps.indexOf(shareBps));
  return { shareBps, stepIndex, steps, isFinalStep: steps[stepIndex + 1] === 10000 };
}

/** Same arms as cumulative and as the current step (a canary still in its first step). */
function input(pair: ArmPair, shareBps = 500, extra: Partial<DecideInput> = {}): DecideInput {
  return { cumulative: pair, step: pair, context: context(shareBps), ...extra };
}

/** Decision stats must survive JSON: numbers finite, or null, or strings. */
function expectJsonSafe(d: Decision) {
  for (const [key, value] of Object.entries(d.stats)) {
    if (typeof value === 'number') expect(Number.isFinite(value), `${key}=${value}`).toBe(true);
    else expect(value === null || typeof value === 'string', key).toBe(true);
  }
  expect(d.reasons.length).toBeGreaterThan(0);
  for (const r of d.reasons) expect(r).not.toMatch(/NaN|Infinity|undefined/);
}

const ORDER = { rollback: 0, hold: 1, 'promote-step': 2 } as const;

// ───────────── configuration ─────────────

describe('configuration', () => {
  it('has the documented defaults', () => {
    expect(DEFAULT_STEPS).toEqual([500, 1000, 2000, 4000, 8000, 10000]);
    expect(DEFAULT_SEQUENTIAL_CONFIG.steps).toEqual([500, 1000, 2000, 4000, 8000, 10000]);
    expect(DEFAULT_SEQUENTIAL_CONFIG.alpha).toBe(0.01);
    expect(DEFAULT_SEQUENTIAL_CONFIG.finalGate.toleranceRel).toBe(0.02);
    expect(DEFAULT_RATIO_CONFIG).toEqual({
      rollbackBelow: 0.95,
      promoteAtOrAbove: 0.99,
      window: 'cumulative',
    });
  });

  it('holds only on material evidence of worse, with a likelihood-ratio final gate', () => {
    expect(DEFAULT_SEQUENTIAL_CONFIG.promotion.maxEValue).toBe(4);
    expect(DEFAULT_SEQUENTIAL_CONFIG.finalGate.method).toBe('likelihood-ratio');
  });

  it('resolvePolicy spells out every setting, and a resolved policy resolves to itself', () => {
    const resolved = resolvePolicy({ sequential: { promotion: { minCanaryScoredPerStep: 15 } } });
    expect(resolved).toEqual({
      policy: 'sequential',
      sequential: {
        ...DEFAULT_SEQUENTIAL_CONFIG,
        promotion: { ...DEFAULT_SEQUENTIAL_CONFIG.promotion, minCanaryScoredPerStep: 15 },
      },
    });
    expect(resolvePolicy(resolved)).toEqual(resolved);
    expect(resolvePolicy({ policy: 'ratio', ratio: { rollbackBelow: 0.9 } })).toEqual({
      policy: 'ratio',
      ratio: { ...DEFAULT_RATIO_CONFIG, rollbackBelow: 0.9 },
    });
  });

  it('defaults are frozen all the way down', () => {
    expect(Object.isFrozen(DEFAULT_SEQUENTIAL_CONFIG.quality)).toBe(true);
    expect(Object.isFrozen(DEFAULT_SEQUENTIAL_CONFIG.steps)).toBe(true);
  });

  it('merges overrides group by group', () => {
    const c = resolveSequentialConfig({ promotion: { minCanaryScoredPerStep: 7 }, alpha: 0.02 });
    expect(c.promotion.minCanaryScoredPerStep).toBe(7);
    expect(c.promotion.minCanaryRequestsPerStep).toBe(
      DEFAULT_SEQUENTIAL_CONFIG.promotion.minCanaryRequestsPerStep,
    );
    expect(c.alpha).toBe(0.02);
    expect(c.quality).toEqual(DEFAULT_SEQUENTIAL_CONFIG.quality);
  });

  it('rejects unusable settings with a readable message', () => {
    expect(() => resolveSequentialConfig({ alpha: 0.7 })).toThrow(/alpha must be in/);
    expect(() => resolveSequentialConfig({ alpha: NaN })).toThrow(/alpha/);
    expect(() => resolveSequentialConfig({ alphaSplit: { quality: 0.9, errors: 0.2, slow: 0.2 } })).toThrow(
      /sum/,
    );
    expect(() => resolveSequentialConfig({ badEvents: { rateRatios: [0.5] } })).toThrow(/rateRatios/);
    expect(() => resolveSequentialConfig({ steps: [500, 400, 10000] })).toThrow(/increasing/);
    expect(() => resolveRatioConfig({ rollbackBelow: 1.1 })).toThrow();
    expect(validateSteps([500, 1000])).toContain('steps must end at 10000');
    expect(validateSteps([])).toEqual(['steps must not be empty']);
  });

  it('next share is the next rung of the ladder, whatever stepIndex says', () => {
    expect(nextShareBps(context(500))).toBe(1000);
    expect(nextShareBps(context(8000))).toBe(10000);
    expect(nextShareBps({ shareBps: 700, stepIndex: 0, steps: [...DEFAULT_STEPS], isFinalStep: false })).toBe(
      1000,
    );
    expect(nextShareBps({ shareBps: 500, stepIndex: 0, steps: [], isFinalStep: false })).toBe(10000);
  });
});

// ───────────── ratio (the seed's rules) ─────────────

describe('ratio policy', () => {
  const ratio = (canaryMean: number | null, stableMean: number | null, share = 500) =>
    decide({
      ...input({ stable: arm(100, stableMean), canary: arm(10, canaryMean) }, share),
      config: { policy: 'ratio' },
    });

  it('rolls back strictly below 0.95 × stable', () => {
    const boundary = 5 * 0.95;
    expect(ratio(boundary, 5).action).toBe('hold');
    expect(ratio(boundary - 1e-9, 5).action).toBe('rollback');
  });

  it('promotes at or above 0.99 × stable, and holds between', () => {
    const boundary = 5 * 0.99;
    expect(ratio(boundary, 5).action).toBe('promote-step');
    expect(ratio(boundary - 1e-9, 5).action).toBe('hold');
    expect(ratio(4.8, 5).action).toBe('hold');
    expect(ratio(6, 5).action).toBe('promote-step');
  });

  it('acts on 1 sample per arm: no sense of sample size (the flaw it is kept to show)', () => {
    const d = decide({
      ...input({ stable: arm(1, 5), canary: arm(1, 4) }),
      config: { policy: 'ratio' },
    });
    expect(d.action).toBe('rollback');
  });

  it('"doubles": promotes to the next rung, reports it, and carries the numbers', () => {
    const d = ratio(5, 5, 1000);
    expect(d.policy).toBe('ratio');
    expect(d.stats.nextShareBps).toBe(2000);
    expect(d.stats.ratio).toBe(1);
    expect(d.stats['canary.scored']).toBe(10);
    expect(d.reasons[0]).toMatch(/1000 → 2000 bps/);
    expectJsonSafe(d);
  });

  it('holds with no data in an arm, and at 100%', () => {
    expect(ratio(null, 5).action).toBe('hold');
    expect(ratio(5, null).action).toBe('hold');
    const empty = decide({ ...input({ stable: EMPTY, canary: EMPTY }), config: { policy: 'ratio' } });
    expect(empty.action).toBe('hold');
    expectJsonSafe(empty);
    expect(ratio(5, 5, 10000).action).toBe('hold');
  });

  it('reads the window it is configured for', () => {
    const cumulative = { stable: arm(100, 5), canary: arm(100, 4) };
    const step = { stable: arm(10, 5), canary: arm(10, 5) };
    const base = { cumulative, step, context: context(1000), previousSteps: [] };
    expect(decideRatio(base).action).toBe('rollback');
    expect(decideRatio(base, { ...DEFAULT_RATIO_CONFIG, window: 'step' }).action).toBe('promote-step');
  });

  it('ratio with a zero stable mean is reported as null, not NaN', () => {
    const d = ratio(0, 0);
    expect(d.stats.ratio).toBeNull();
    expectJsonSafe(d);
  });
});

// ───────────── sequential (the default) ─────────────

describe('sequential policy: defaults and edge cases', () => {
  it('is the default policy', () => {
    expect(decide(input({ stable: EMPTY, canary: EMPTY })).policy).toBe('sequential');
  });

  it('holds on empty arms, without NaN anywhere', () => {
    const d = decide(input({ stable: EMPTY, canary: EMPTY }));
    expect(d.action).toBe('hold');
    expectJsonSafe(d);
  });

  it('holds with only one arm, even when that arm looks perfect', () => {
    const canaryOnly = decide(input({ stable: EMPTY, canary: arm(400, 9, 0.5) }));
    expect(canaryOnly.action).toBe('hold');
    expectJsonSafe(canaryOnly);
    const stableOnly = decide(input({ stable: arm(4000, 7), canary: EMPTY }));
    expect(stableOnly.action).toBe('hold');
    expectJsonSafe(stableOnly);
  });

  it('survives garbage input: NaN, negatives, means without scores, errors > requests', () => {
    const bad: ArmStats = {
      requests: NaN,
      errors: -3,
      slow: Infinity,
      scored: 12,
      qualityMean: NaN,
      qualityVariance: -1,
      costUsd: NaN,
      p95LatencyMs: NaN,
    };
    const d = decide(input({ stable: bad, canary: { ...EMPTY, requests: 10, errors: 50 } }));
    expect(d.action).toBe('hold');
    expectJsonSafe(d);
  });

  it('zero variance, equal arms: no rollback, and promotion once the step has its sample', () => {
    const pair = { stable: arm(2000, 5, 0), canary: arm(300, 5, 0) };
    const d = decide(input(pair));
    expect(d.action).toBe('promote-step');
    expectJsonSafe(d);
  });

  it('zero variance, different arms: all-4s against all-5s is a clear drop', () => {
    const d = decide(input({ stable: arm(2000, 5, 0), canary: arm(50, 4, 0) }));
    expect(d.action).toBe('rollback');
    expect(d.reasons.join(' ')).toMatch(/^quality:/);
    expectJsonSafe(d);
  });

  it('all canary requests failing is caught by the error test', () => {
    const stable = arm(1000, 7);
    const canary = { ...arm(5, 7), requests: 20, errors: 20 };
    const d = decide(input({ stable, canary }));
    expect(d.action).toBe('rollback');
    expect(d.reasons.some((r) => r.startsWith('errors:'))).toBe(true);
    expectJsonSafe(d);
  });

  it('a handful of errors on a small canary is not enough', () => {
    // 2 errors in 40 canary requests vs 1% on stable: suspicious, not proof at α = 0.25%.
    const d = decide(input({ stable: arm(1000, 7), canary: { ...arm(10, 7), requests: 40, errors: 2 } }));
    expect(d.action).not.toBe('rollback');
  });

  it('a 3× error rate on enough traffic rolls back, citing the numbers', () => {
    const stable = { ...arm(5000, 7), requests: 20000, errors: 200 };
    const canary = { ...arm(250, 7), requests: 1000, errors: 30 };
    const d = decide(input({ stable, canary }));
    expect(d.action).toBe('rollback');
    expect(d.stats['errors.canary']).toBe(30);
    expect(d.stats['errors.logLR'] as number).toBeGreaterThanOrEqual(
      d.stats['errors.logThreshold'] as number,
    );
    expect(d.reasons.join(' ')).toMatch(/errors: canary 30\/1000 \(3\.00%\) vs stable 200\/20000 \(1\.00%\)/);
  });

  it('a slower canary (slow share 5% → 15%) rolls back on the slow-request test', () => {
    const stable = { ...arm(5000, 7), requests: 20000, slow: 1000 };
    const canary = { ...arm(200, 7), requests: 800, slow: 120 };
    const d = decide(input({ stable, canary }));
    expect(d.action).toBe('rollback');
    expect(d.reasons.some((r) => r.startsWith('slow requests:'))).toBe(true);
  });

  it('a better canary is never rolled back', () => {
    const stable = { ...arm(5000, 7), errors: 400, slow: 1000 };
    const canary = { ...arm(500, 8), errors: 0, slow: 0 };
    const d = decide(input({ stable, canary }));
    expect(d.action).toBe('promote-step');
  });

  it('holds at 100%', () => {
    const d = decide(input({ stable: arm(100, 7), canary: arm(100, 7) }, 10000));
    expect(d.action).toBe('hold');
    expectJsonSafe(d);
  });

  it('every decision carries n per arm, means, bounds, statistics and thresholds', () => {
    const d = decide(input({ stable: arm(4000, 7), canary: arm(300, 6.9) }));
    for (const key of [
      'canary.scored',
      'stable.scored',
      'canary.mean',
      'stable.mean',
      'quality.diff',
      'quality.upper',
      'quality.rollbackThreshold',
      'quality.logE',
      'errors.logLR',
      'errors.logThreshold',
      'slow.logLR',
      'slow.logThreshold',
      'step.canary.scored',
      'step.minScored',
    ]) {
      expect(d.stats[key], key).not.toBeUndefined();
    }
    expect(d.reasons.find((r) => r.startsWith('quality:'))).toMatch(
      /canary 6\.90 \(n=300\) vs stable 7\.00 \(n=4000\)/,
    );
    expectJsonSafe(d);
  });
});

describe('sequential policy: quality test', () => {
  it('stays silent below the minimum canary sample, whatever the means say', () => {
    const d = decide(input({ stable: arm(2000, 7), canary: arm(19, 2, 1) }));
    expect(d.action).toBe('hold');
    expect(d.reasons.join(' ')).toMatch(/waiting for 20 canary scores \(have 19\)/);
  });

  it('a 10% drop on 250 canary scores rolls back', () => {
    const d = decide(input({ stable: arm(4750, 7), canary: arm(250, 6.3) }));
    expect(d.action).toBe('rollback');
    expect(d.stats['quality.upper'] as number).toBeLessThan(0);
  });

  it('a small drop on little data is not evidence', () => {
    const d = decide(input({ stable: arm(1000, 7), canary: arm(50, 6.7) }));
    expect(d.action).not.toBe('rollback');
  });

  it('rollbackMarginRel tolerates small evidenced drops', () => {
    const pair = { stable: arm(100000, 7), canary: arm(20000, 6.86) }; // −2%, overwhelming evidence
    expect(decide(input(pair)).action).toBe('rollback');
    const tolerant = decide({
      ...input(pair),
      config: { sequential: { quality: { rollbackMarginRel: 0.05 } } },
    });
    expect(tolerant.action).not.toBe('rollback');
  });

  it('is monotone: a worse canary never gets promoted where a better one is rolled back', () => {
    const seen = new Set<string>();
    for (const share of [500, 4000, 8000]) {
      for (const n of [30, 100, 400, 3000]) {
        let previous = -1;
        for (let mean = 5; mean <= 8.0001; mean += 0.05) {
          const d = decide(input({ stable: arm(n * 19, 7), canary: arm(n, mean) }, share));
          const rank = ORDER[d.action];
          expect(rank, `share ${share}, n ${n}, mean ${mean.toFixed(2)}`).toBeGreaterThanOrEqual(previous);
          previous = rank;
          seen.add(d.action);
        }
      }
    }
    expect([...seen].sort()).toEqual(['hold', 'promote-step', 'rollback']); // the grid crosses both boundaries
  });

  it('is monotone in canary errors too', () => {
    let previous = 3;
    const seen = new Set<string>();
    for (let errors = 0; errors <= 80; errors++) {
      const stable = { ...arm(5000, 7), requests: 20000, errors: 200 };
      const canary = { ...arm(300, 7), requests: 1200, errors };
      const action = decide(input({ stable, canary })).action;
      expect(ORDER[action], `errors ${errors}`).toBeLessThanOrEqual(previous);
      previous = ORDER[action];
      seen.add(action);
    }
    expect([...seen].sort()).toEqual(['hold', 'promote-step', 'rollback']);
  });
});

describe('sequential policy: promotion', () => {
  const equal = (canaryScored: number, stableScored = canaryScored * 19) => ({
    stable: arm(stableScored, 7),
    canary: arm(canaryScored, 7),
  });

  it('needs the per-step minimum of canary scores', () => {
    const min = DEFAULT_SEQUENTIAL_CONFIG.promotion.minCanaryScoredPerStep;
    const cumulative = equal(400);
    const few = { stable: arm(950, 7), canary: { ...arm(min - 1, 7), requests: 5000 } };
    const enough = { stable: arm(950, 7), canary: { ...arm(min, 7), requests: 5000 } };
    const held = decide({ cumulative, step: few, context: context(1000) });
    expect(held.action).toBe('hold');
    expect(held.reasons.at(-1)).toMatch(new RegExp(`${min - 1}/${min} canary scores`));
    expect(decide({ cumulative, step: enough, context: context(1000) }).action).toBe('promote-step');
  });

  it('needs the per-step minimum of canary requests', () => {
    const min = DEFAULT_SEQUENTIAL_CONFIG.promotion.minCanaryRequestsPerStep;
    const cumulative = equal(2000);
    const step = (requests: number) => ({ stable: arm(950, 7), canary: { ...arm(100, 7), requests } });
    expect(decide({ cumulative, step: step(min - 1), context: context(1000) }).action).toBe('hold');
    expect(decide({ cumulative, step: step(min), context: context(1000) }).action).toBe('promote-step');
  });

  it('holds while the evidence for worse is material, even below the rollback threshold', () => {
    // 3 standard errors below stable: not enough to roll back at α = 0.5%, enough not to add exposure.
    const pair = { stable: arm(19000, 7), canary: arm(1000, 6.8) };
    const d = decide(input(pair));
    expect(d.action).toBe('hold');
    expect(Math.exp(d.stats['quality.logE'] as number)).toBeGreaterThan(4);
    expect(d.reasons.at(-1)).toMatch(/quality evidence leans toward worse \(e-value > 4\) → hold/);
    const relaxed = decide({
      ...input(pair),
      config: { sequential: { promotion: { maxEValue: Infinity } } },
    });
    expect(relaxed.action).toBe('promote-step');
  });

  it('does not hold on a slight lean, which an equal candidate shows half the time', () => {
    // 2.2 standard errors below: e-value ≈ 2.6, above 1 (the v1 rule held here) but below 4.
    const pair = { stable: arm(19000, 7), canary: arm(1000, 6.85) };
    const d = decide(input(pair));
    expect(Math.exp(d.stats['quality.logE'] as number)).toBeGreaterThan(1);
    expect(Math.exp(d.stats['quality.logE'] as number)).toBeLessThan(4);
    expect(d.action).toBe('promote-step');
    // A rollout that asks to hold at any lean (maxEValue 1) holds here.
    const v1 = decide({ ...input(pair), config: { sequential: { promotion: { maxEValue: 1 } } } });
    expect(v1.action).toBe('hold');
    expect(v1.reasons.at(-1)).toMatch(/e-value > 1\) → hold/);
  });

  it('3 canary errors where 1.5 were expected do not hold a step (they do with maxEValue 1)', () => {
    const pair = {
      stable: arm(1425, 7, 4, { requests: 5700, errors: 27, slow: 285 }),
      canary: arm(75, 7, 4, { requests: 300, errors: 3, slow: 15 }),
    };
    const config = {
      sequential: { promotion: { minCanaryScoredPerStep: 20, minCanaryRequestsPerStep: 30 } },
    };
    const d = decide({ ...input(pair), config });
    expect(d.stats['errors.expectedCanary']).toBeCloseTo(1.5, 9);
    expect(Math.exp(d.stats['errors.logLR'] as number)).toBeGreaterThan(1);
    expect(d.action).toBe('promote-step');
    const v1 = decide({
      ...input(pair),
      config: { sequential: { promotion: { ...config.sequential.promotion, maxEValue: 1 } } },
    });
    expect(v1.action).toBe('hold');
    expect(v1.reasons.at(-1)).toMatch(/errors evidence leans toward worse \(e-value > 1\)/);
  });

  it('before the last steps, demands non-inferiority within 2%', () => {
    // Equal means, but too little data to bound the difference within 2% → hold at 40%.
    const little = { stable: arm(2000, 7), canary: arm(400, 7) };
    const early = decide(input(little, 2000));
    expect(early.action).toBe('promote-step');
    const gated = decide(input(little, 4000));
    expect(gated.action).toBe('hold');
    expect(gated.stats['gate.applies']).toBe('yes');
    expect(gated.reasons.at(-1)).toMatch(
      /final gate: canary − stable 0\.00 \(0\.0%\) over 400 canary scores; log LR of "as good as stable" against "2\.0% worse" 0\.82 < 3\.00 → not yet shown within 2\.0% of stable, hold/,
    );
    // Plenty of data: the bound is well inside −2% → promote to 80%, and from 80% to 100%.
    const lots = { stable: arm(40000, 7), canary: arm(20000, 7) };
    expect(decide(input(lots, 4000)).action).toBe('promote-step');
    const last = decide(input(lots, 8000));
    expect(last.action).toBe('promote-step');
    expect(last.stats.nextShareBps).toBe(10000);
  });

  it('the final gate also wants the error rate shown below 1.5x stable', () => {
    // Equal quality with plenty of data, but 1.5% errors against stable's 1%: never promoted.
    for (const n of [5000, 20000, 80000]) {
      const pair = { stable: arm(n * 2, 7), canary: arm(n, 7, 4, { errors: Math.round(n * 4 * 0.015) }) };
      const d = decide(input(pair, 4000));
      expect(d.action, `n=${n}`).not.toBe('promote-step');
    }
    // 1.22% against 1%: too little for the rollback test to lean toward "worse", but not shown below 1.5x.
    const worse = { stable: arm(40000, 7), canary: arm(20000, 7, 4, { errors: 975 }) };
    const held = decide(input(worse, 4000));
    expect(held.action).toBe('hold');
    expect(held.stats['gate.errors']).toBe('tested');
    expect(held.reasons.at(-1)).toMatch(
      /final gate, errors: canary 975\/80000 \(1\.22%\) vs stable 1600\/160000 \(1\.00%\); log LR of "same rate" against "1\.5× stable" 1\.61 < 3\.00 → not yet shown below 1\.5× stable, hold/,
    );
    expectJsonSafe(held);
    // The same error rates below 1.5x with enough data pass: equal rates, plenty of errors.
    const equal = decide(input({ stable: arm(40000, 7), canary: arm(20000, 7) }, 4000));
    expect(equal.action).toBe('promote-step');
    expect(equal.reasons.some((r) => /final gate, errors: .* → not 1\.5× worse/.test(r))).toBe(true);
    // Rare errors (canary at most 0.5%) are not gated: nothing to tell apart.
    const rare = { stable: arm(40000, 7, 4, { errors: 400 }), canary: arm(20000, 7, 4, { errors: 200 }) };
    const passed = decide(input(rare, 4000));
    expect(passed.action).toBe('promote-step');
    expect(passed.stats['gate.errors']).toBe('below floor');
    // errorRatio 0 turns the error part off; a ratio ≤ 1 is refused, naming the field.
    const off = decide({ ...input(worse, 4000), config: { sequential: { finalGate: { errorRatio: 0 } } } });
    expect(off.action).toBe('promote-step');
    expect(() =>
      decide({ ...input(worse, 4000), config: { sequential: { finalGate: { errorRatio: 0.5 } } } }),
    ).toThrow(/finalGate\.errorRatio must be > 1 \(or 0: off\), got 0\.5/);
  });

  it('a 3%-worse candidate never passes the final gate', () => {
    for (const n of [500, 2000, 10000, 50000]) {
      const d = decide(input({ stable: arm(n * 2, 7), canary: arm(n, 7 * 0.97) }, 4000));
      expect(d.action).not.toBe('promote-step');
    }
  });

  it('the likelihood-ratio gate is the SPRT of "equal" against "2% worse" on the quality difference', () => {
    const pair = { stable: arm(4000, 7), canary: arm(1500, 7.03) };
    const d = decide(input(pair, 4000));
    const delta = 0.02 * 7;
    const information = 1 / (4 / 1500 + 4 / 4000);
    expect(d.stats['gate.logLR']).toBeCloseTo(information * delta * (0.03 + delta / 2), 6);
    expect(d.stats['gate.threshold']).toBeCloseTo(Math.log(20), 9);
    expect(d.action).toBe('promote-step');
  });

  it('a candidate exactly at the tolerance never gains evidence for "as good as stable"', () => {
    // At D = −δ the log likelihood ratio is −I·δ²/2: more data only push it further from passing.
    let previous = 0;
    // (With much more data the quality test rolls it back: 2% worse is worse.)
    for (const n of [500, 1000, 2000, 4000]) {
      const d = decide({
        ...input({ stable: arm(n * 2, 7), canary: arm(n, 7 * 0.98) }, 4000),
        config: { sequential: { promotion: { maxEValue: Infinity } } }, // let it reach the gate
      });
      expect(d.action).toBe('hold');
      const logLR = d.stats['gate.logLR'] as number;
      expect(logLR).toBeLessThan(previous);
      previous = logLR;
    }
  });

  it('an equal candidate passes the likelihood-ratio gate with fewer scores than the confidence-sequence gate', () => {
    const first = (config: DecideInput['config']) => {
      for (let n = 100; n <= 20000; n += 50) {
        const pair = { stable: arm(n * 2, 7), canary: arm(n, 7) };
        if (decide({ ...input(pair, 4000), config }).action === 'promote-step') return n;
      }
      return Infinity;
    };
    const lr = first(undefined);
    const cs = first({ sequential: { finalGate: { method: 'confidence-sequence' } } });
    // 2·log(20)/δ² = 306 of information at δ = 0.14; I = n/6 with variance 4 and stable twice the canary.
    expect(lr).toBeGreaterThanOrEqual(1800);
    expect(lr).toBeLessThanOrEqual(1900);
    expect(cs).toBeGreaterThan(1.2 * lr);
  });

  it('refuses a likelihood-ratio gate with no tolerance, and unknown gate methods', () => {
    expect(() => resolveSequentialConfig({ finalGate: { toleranceRel: 0 } })).toThrow(
      /finalGate\.toleranceRel must be > 0 with the likelihood-ratio gate/,
    );
    expect(
      resolveSequentialConfig({ finalGate: { toleranceRel: 0, method: 'confidence-sequence' } }).finalGate
        .toleranceRel,
    ).toBe(0);
    expect(() => resolveSequentialConfig({ finalGate: { method: 'bayes' as never } })).toThrow(
      /finalGate\.method must be 'likelihood-ratio' or 'confidence-sequence', got bayes/,
    );
  });

  it('isFinalStep triggers the gate even on a custom ladder', () => {
    const pair = { stable: arm(2000, 7), canary: arm(400, 7) };
    const ctx: StepContext = { shareBps: 2500, stepIndex: 1, steps: [1000, 2500, 10000], isFinalStep: true };
    const d = decide({ cumulative: pair, step: pair, context: ctx });
    expect(d.action).toBe('hold');
    expect(d.stats['gate.applies']).toBe('yes');
  });

  it('the gate can be switched off', () => {
    const pair = { stable: arm(2000, 7), canary: arm(400, 7) };
    const d = decide({ ...input(pair, 4000), config: { sequential: { finalGate: { enabled: false } } } });
    expect(d.action).toBe('promote-step');
  });

  it('decideSequential and decide agree', () => {
    const i = input({ stable: arm(3000, 7), canary: arm(300, 7.1) }, 1000);
    expect(decideSequential({ ...i, previousSteps: [] })).toEqual(decide(i));
  });
});

describe('sequential promotion with no bad events at all', () => {
  it('promotes an equal, error-free canary once the step has its sample (no "lean" from an e-value of exactly 1)', () => {
    const arm = (requests: number, mean: number) => ({
      requests,
      errors: 0,
      slow: 0,
      scored: requests,
      qualityMean: mean,
      qualityVariance: 0.7,
      costUsd: 0,
      p95LatencyMs: 10,
    });
    const pair = { stable: arm(20000, 4.8), canary: arm(1200, 4.8) };
    const d = decide({
      cumulative: pair,
      step: pair,
      context: {
        shareBps: 500,
        stepIndex: 0,
        steps: [500, 1000, 2000, 4000, 8000, 10000],
        isFinalStep: false,
      },
    });
    expect(d.action).toBe('promote-step');
  });
});
