/**
 * The refusal and attempt-error tests of the sequential policy (issue 19, findings 1 and 11), the guardian's
 * comparison with the previous model, and the settings behind them: pure code, checked case by case and
 * by simulation.
 */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SEQUENTIAL_CONFIG,
  cleanArm,
  compareWithPrevious,
  decideSequential,
  estimateHold,
  resolveSequentialConfig,
  type ArmStats,
  type PolicyInput,
  type SequentialConfig,
} from '../../src/decision/policy';
import { dominantRefusal, roughPercent } from '../../src/decision/policy/sequential-tests';
import { createRandom, type Random } from '../../src/tooling/simulator/random';

const arm = (requests: number, extra: Partial<ArmStats> = {}): ArmStats => ({
  requests,
  errors: 0,
  slow: 0,
  scored: 0,
  qualityMean: null,
  qualityVariance: null,
  costUsd: 0,
  p95LatencyMs: null,
  ...extra,
});

const context = (shareBps = 2000) => ({
  shareBps,
  stepIndex: 0,
  steps: [shareBps, 10000],
  isFinalStep: true,
});

/** One step at a 20% share: the cumulative and step windows are the same. */
function input(canary: ArmStats, stable: ArmStats, shareBps = 2000): PolicyInput {
  return {
    cumulative: { canary, stable },
    step: { canary, stable },
    context: context(shareBps),
    previousSteps: [],
  };
}

/** Promotion on requests alone (no judged answers), no final gate: what the refusal tests decide. */
const CONFIG: SequentialConfig = resolveSequentialConfig({
  promotion: { minCanaryScoredPerStep: 0, minCanaryRequestsPerStep: 100 },
  finalGate: { enabled: false },
});

describe('refusals are compared per arm', () => {
  it('a candidate refusing 19% where stable refuses 0.4% is rolled back, the reason naming the dominant kind', () => {
    const canary = arm(162, {
      refusals: 38,
      refusalKinds: { unsupported_parameter: 30, bad_request: 8 },
    });
    const stable = arm(796, { refusals: 4, refusalKinds: { bad_request: 4 } });
    const d = decideSequential(input(canary, stable), CONFIG);
    expect(d.action).toBe('rollback');
    expect(d.reasons[0]).toMatch(
      /^refusals: candidate refused 19% of requests as unsupported_parameter, stable 0\.5% \(canary 38\/200/,
    );
    expect(d.stats).toMatchObject({ 'refusals.canary': 38, 'refusals.stable': 4, 'refusals.alpha': 0.0005 });
  });

  it('a candidate that refuses every request is rolled back (it has no served request at all)', () => {
    const d = decideSequential(
      input(arm(0, { refusals: 30, refusalKinds: { bad_request: 30 } }), arm(120)),
      CONFIG,
    );
    expect(d.action).toBe('rollback');
    expect(d.reasons[0]).toMatch(/^refusals: candidate refused 100% of requests as bad_request, stable 0%/);
  });

  it('the same refusal rate on both arms (a client sending malformed bodies) rolls nothing back and promotes', () => {
    const d = decideSequential(input(arm(160, { refusals: 40 }), arm(640, { refusals: 160 })), CONFIG);
    expect(d.action).toBe('promote-step');
    expect(d.reasons.find((r) => r.startsWith('refusals:'))).toMatch(/→ no evidence$/);
  });

  it('too few refusals to tell is no evidence, and a lean holds the step without rolling back', () => {
    // 4 canary refusals where 0.8 were expected: material (e-value above 4), not yet 1/α.
    const d = decideSequential(input(arm(200, { refusals: 4 }), arm(800, { refusals: 0 })), CONFIG);
    expect(d.action).toBe('hold');
    expect(d.reasons.at(-1)).toMatch(/refusals evidence leans toward worse/);
    const estimate = estimateHold(
      { ...input(arm(200, { refusals: 4 }), arm(800)), stepElapsedMs: 60_000, canaryElapsedMs: 60_000 },
      CONFIG,
    );
    expect(estimate?.binding.condition).toBe('refusals leaning');
  });

  it('a policy resolved before refusals were counted (a running rollout) runs neither new test', () => {
    const old = {
      ...CONFIG,
      alphaSplit: { quality: 0.5, errors: 0.25, slow: 0.25 },
    } as SequentialConfig;
    const d = decideSequential(input(arm(0, { refusals: 30 }), arm(120)), old);
    expect(d.action).toBe('hold');
    expect(d.reasons.some((r) => r.startsWith('refusals') || r.startsWith('attempt errors'))).toBe(false);
    expect(d.stats['refusals.alpha']).toBeUndefined();
  });

  it('statistics from before refusals and attempts were counted read as none refused, one attempt each', () => {
    expect(cleanArm(arm(10))).toMatchObject({ refusals: 0, attempts: 10, attemptErrors: 0 });
    expect(cleanArm(arm(10, { attempts: 5, attemptErrors: 9, refusals: -1 }))).toMatchObject({
      refusals: 0,
      attempts: 5,
      attemptErrors: 5,
    });
    expect(cleanArm(arm(1, { refusalKinds: { bad_request: 2, x: NaN, y: 0 } })).refusalKinds).toEqual({
      bad_request: 2,
    });
  });
});

describe('failed attempts are compared per arm, apart from the failures users saw', () => {
  it('10% of the candidate’s attempts failing (all retried to success) against none on stable: rolled back', () => {
    const canary = arm(200, { attempts: 222, attemptErrors: 22 });
    const stable = arm(800, { attempts: 800, attemptErrors: 0 });
    const d = decideSequential(input(canary, stable), CONFIG);
    expect(d.action).toBe('rollback');
    expect(d.reasons).toHaveLength(1);
    expect(d.reasons[0]).toMatch(
      /^attempt errors: candidate 9\.9% of attempts failed, stable 0% \(canary 22\/222/,
    );
    expect(d.stats['errors.canary']).toBe(0);
  });

  it('the same attempt-error rate on both arms (a provider incident on both) rolls nothing back', () => {
    const d = decideSequential(
      input(arm(200, { attempts: 220, attemptErrors: 20 }), arm(800, { attempts: 880, attemptErrors: 80 })),
      CONFIG,
    );
    expect(d.action).toBe('promote-step');
  });

  it('when refusals, attempt errors and slow requests fire together, the reasons lead with refusals, then attempts', () => {
    const canary = arm(200, { refusals: 60, attempts: 260, attemptErrors: 60, slow: 120 });
    const stable = arm(800, { attempts: 800, slow: 40 });
    const d = decideSequential(input(canary, stable), CONFIG);
    expect(d.reasons.map((r) => r.split(':')[0])).toEqual(['refusals', 'attempt errors', 'slow requests']);
  });
});

// ───────────── Monte Carlo: an equal candidate, checked every minute ─────────────

function binomial(r: Random, n: number, p: number): number {
  let x = 0;
  for (let i = 0; i < n; i++) if (r.next() < p) x++;
  return x;
}

/**
 * Fraction of equal candidates rolled back by the refusal or attempt-error test over a 5% → 40% ladder
 * checked 30 times a step, with a high refusal and attempt-error rate on both arms (the client's and the
 * provider's), at α 0.196 on those two tests (0.098 each) so the rate is measurable in a few thousand runs.
 */
function falseRollbacks(rollouts: number, seed: number): number {
  const config = resolveSequentialConfig({
    alpha: 0.2,
    alphaSplit: { quality: 0.0001, errors: 0.0001, slow: 0.0001, refusals: 0.49, attemptErrors: 0.49 },
    promotion: { minCanaryScoredPerStep: 0, minCanaryRequestsPerStep: 0 },
    finalGate: { enabled: false },
  });
  const steps = [500, 1000, 2000, 4000];
  let hits = 0;
  for (let i = 0; i < rollouts; i++) {
    const r = createRandom(seed * 7919 + i);
    const previous: PolicyInput['previousSteps'] = [];
    let cum = { canary: arm(0), stable: arm(0) };
    let hit = false;
    for (const share of steps) {
      let step = { canary: arm(0), stable: arm(0) };
      for (let k = 0; k < 30 && !hit; k++) {
        const add = (a: ArmStats, n: number): ArmStats => {
          const refused = binomial(r, n, 0.05);
          const served = n - refused;
          const attempts = served + binomial(r, served, 0.03);
          return arm(a.requests + served, {
            refusals: (a.refusals ?? 0) + refused,
            attempts: (a.attempts ?? 0) + attempts,
            attemptErrors: (a.attemptErrors ?? 0) + binomial(r, attempts, 0.03),
          });
        };
        const nc = binomial(r, 100, share / 10000);
        step = { canary: add(step.canary, nc), stable: add(step.stable, 100 - nc) };
        cum = { canary: add(cum.canary, nc), stable: add(cum.stable, 100 - nc) };
        const d = decideSequential(
          { cumulative: cum, step, context: context(share), previousSteps: previous },
          config,
        );
        if (d.action === 'rollback') hit = true;
      }
      if (hit) break;
      previous.push({ canary: step.canary, stable: step.stable });
    }
    if (hits < rollouts && hit) hits++;
  }
  return hits / rollouts;
}

describe('Monte Carlo: refusals and attempt errors on both arms alike', () => {
  it('an equal candidate is rolled back within the alpha of the two tests', () => {
    const rate = falseRollbacks(1500, 11);
    console.log(`equal candidate, 1500 rollouts, refusals 5% and attempt errors 3% on both arms: ${rate}`);
    expect(rate).toBeLessThanOrEqual(0.2);
  }, 120_000);
});

describe('settings and wording', () => {
  it('the default alpha split gives every test a share and sums to 1; a split over 1 is refused naming the sum', () => {
    const split = DEFAULT_SEQUENTIAL_CONFIG.alphaSplit;
    expect(split).toEqual({ quality: 0.5, errors: 0.2, slow: 0.2, refusals: 0.05, attemptErrors: 0.05 });
    expect(() => resolveSequentialConfig({ alphaSplit: { quality: 0.5, errors: 0.25, slow: 0.25 } })).toThrow(
      /alphaSplit must sum to at most 1, got 1\.1/,
    );
    expect(() => resolveSequentialConfig({ alphaSplit: { refusals: 0 } })).toThrow(
      /alphaSplit\.refusals must be in \(0, 1\]/,
    );
  });

  it('rates are said as a person would, and the dominant refusal kind is the most frequent', () => {
    expect([0.19, 0.004, 0.0001234, 0, 1, 0.0625, null].map(roughPercent)).toEqual([
      '19%',
      '0.4%',
      '0.01%',
      '0%',
      '100%',
      '6.3%',
      'n/a',
    ]);
    expect(dominantRefusal({ bad_request: 2, unsupported_parameter: 5 })).toBe('unsupported_parameter');
    expect(dominantRefusal({ content_policy: 3, bad_request: 3 })).toBe('bad_request');
    expect(dominantRefusal(undefined)).toBe('bad_request');
  });
});

describe('the guardian compares the promoted model with the previous one', () => {
  it('refusing far more than the previous model fires; the same rate, or too little data, does not', () => {
    const [refusals, attempts] = compareWithPrevious(
      { requests: 400, refusals: 100, refusalKinds: { unsupported_parameter: 100 }, attempts: 400 },
      { requests: 2000, refusals: 8, attempts: 2000 },
    );
    expect(refusals).toMatchObject({ metric: 'refusal_rate', fired: true, status: 'fired' });
    expect(refusals.reason).toMatch(
      /^refusals: refused 20% of requests as unsupported_parameter since it took over, the previous model 0\.4%/,
    );
    expect(attempts).toMatchObject({ metric: 'attempt_error_rate', fired: false, status: 'ok' });

    const same = compareWithPrevious({ requests: 400, refusals: 20 }, { requests: 2000, refusals: 100 });
    expect(same.map((c) => c.fired)).toEqual([false, false]);
    const little = compareWithPrevious({ requests: 10, refusals: 10 }, { requests: 2000 });
    expect(little[0]).toMatchObject({ status: 'insufficient-sample', fired: false });
    const flaky = compareWithPrevious(
      { requests: 500, attempts: 560, attemptErrors: 60 },
      { requests: 2000, attempts: 2004, attemptErrors: 4 },
    );
    expect(flaky[1]).toMatchObject({ fired: true });
    expect(flaky[1].reason).toMatch(
      /^attempt errors: 11% of attempts failed since it took over, the previous model 0\.2%/,
    );
  });
});
