/**
 * The error and slow-request tests keep one likelihood-ratio factor per canary step, each at its own
 * split (bad-event-test.ts). These tests pin the segments down, show that the evidence does not jump when
 * a step closes (the property that makes the sequence one test martingale), and measure the false-rollback
 * rate of an equal candidate over whole multi-step rollouts by Monte Carlo, next to pooling (everything
 * before the current step as one segment at its average split), the method per-step windows replaced.
 */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SEQUENTIAL_CONFIG,
  decideSequential,
  estimateHold,
  resolveSequentialConfig,
  type ArmPair,
  type ArmStats,
  type StepContext,
  type StepCounts,
} from '../../src/decision/policy/index';
import { badEventMixture, logLikelihoodRatio } from '../../src/decision/policy/bad-event-test';
import { badEventSegments, badEventTest, errorGate } from '../../src/decision/policy/sequential-tests';
import { createRandom, type Random } from '../../src/tooling/simulator/random';

const STEPS = [500, 1000, 2000, 4000, 8000, 10000];

function arm(requests: number, errors: number, slow = 0, extra: Partial<ArmStats> = {}): ArmStats {
  return {
    requests,
    errors,
    slow,
    scored: 0,
    qualityMean: null,
    qualityVariance: null,
    costUsd: 0,
    p95LatencyMs: null,
    ...extra,
  };
}

function pair(canary: ArmStats, stable: ArmStats): ArmPair {
  return { canary, stable };
}

function counts(p: ArmPair): StepCounts {
  const c = (a: ArmStats) => ({ requests: a.requests, errors: a.errors, slow: a.slow });
  return { canary: c(p.canary), stable: c(p.stable) };
}

function sum(pairs: ArmPair[]): ArmPair {
  const add = (key: 'canary' | 'stable') =>
    arm(
      pairs.reduce((n, p) => n + p[key].requests, 0),
      pairs.reduce((n, p) => n + p[key].errors, 0),
      pairs.reduce((n, p) => n + p[key].slow, 0),
    );
  return pair(add('canary'), add('stable'));
}

/** Everything before the current step as one segment: what pooling would pass as the earlier steps. */
function pooled(cum: ArmPair, step: ArmPair): StepCounts[] {
  const before = (key: 'canary' | 'stable') => ({
    requests: cum[key].requests - step[key].requests,
    errors: cum[key].errors - step[key].errors,
    slow: cum[key].slow - step[key].slow,
  });
  return [{ canary: before('canary'), stable: before('stable') }];
}

function context(shareBps: number): StepContext {
  const stepIndex = STEPS.indexOf(shareBps);
  return { shareBps, stepIndex, steps: STEPS, isFinalStep: STEPS[stepIndex + 1] === 10000 };
}

const RATIOS = DEFAULT_SEQUENTIAL_CONFIG.badEvents.rateRatios;
const logLR = (segments: ReturnType<typeof badEventSegments>) => badEventMixture(segments, RATIOS).logLR;

describe('bad-event segments', () => {
  // Three steps at 5%, 10% and 20%, 10 000 requests each, stable at 2% errors and 4% slow.
  const step1 = pair(arm(500, 10, 20), arm(9500, 190, 380));
  const step2 = pair(arm(1000, 30, 40), arm(9000, 180, 360));
  const step3 = pair(arm(2000, 40, 90), arm(8000, 160, 320));

  it('keeps one segment per step, each with its own counts, the current step last', () => {
    const segments = badEventSegments('errors', step3, [counts(step1), counts(step2)]);
    expect(segments).toEqual([
      { canaryBad: 10, canaryRequests: 500, stableBad: 190, stableRequests: 9500 },
      { canaryBad: 30, canaryRequests: 1000, stableBad: 180, stableRequests: 9000 },
      { canaryBad: 40, canaryRequests: 2000, stableBad: 160, stableRequests: 8000 },
    ]);
    expect(badEventSegments('slow', step3, [counts(step1), counts(step2)]).map((s) => s.canaryBad)).toEqual([
      20, 40, 90,
    ]);
  });

  it('pooling is one segment for everything before the current step', () => {
    const cum = sum([step1, step2, step3]);
    expect(badEventSegments('errors', step3, pooled(cum, step3))).toEqual([
      { canaryBad: 40, canaryRequests: 1500, stableBad: 370, stableRequests: 18500 },
      { canaryBad: 40, canaryRequests: 2000, stableBad: 160, stableRequests: 8000 },
    ]);
  });

  it('an empty list of earlier steps is the first step: only the current segment', () => {
    expect(badEventSegments('errors', step1, [])).toEqual([
      { canaryBad: 10, canaryRequests: 500, stableBad: 190, stableRequests: 9500 },
    ]);
  });

  it('the evidence is the product of the per-step likelihood ratios', () => {
    for (const r of [1.5, 2, 3]) {
      const whole = logLikelihoodRatio(badEventSegments('errors', step3, [counts(step1), counts(step2)]), r);
      const parts = [step1, step2, step3]
        .map((s) => logLikelihoodRatio(badEventSegments('errors', s, []), r))
        .reduce((a, b) => a + b, 0);
      expect(whole).toBeCloseTo(parts, 12);
    }
  });

  it('does not jump when a step closes (per step), where pooling re-evaluates the past', () => {
    // An incident that doubled every model's errors during the 20% step: 40% of all bad events then.
    const incident = pair(arm(2000, 120, 0), arm(8000, 480, 0));
    const steps = [step1, step2, incident];
    const cum = sum(steps);
    const empty = pair(arm(0, 0), arm(0, 0));
    const beforeClose = logLR(badEventSegments('errors', incident, [counts(step1), counts(step2)]));
    const afterClose = logLR(badEventSegments('errors', empty, steps.map(counts)));
    expect(afterClose).toBeCloseTo(beforeClose, 12);
    // Pooled: the incident's bad events, 20% of them on the canary, are now judged at the average split
    // of all three steps (11.7%), so an equal candidate suddenly looks worse.
    const pooledBefore = logLR(badEventSegments('errors', incident, pooled(cum, incident)));
    const pooledAfter = logLR(badEventSegments('errors', empty, pooled(cum, empty)));
    expect(pooledAfter).toBeGreaterThan(pooledBefore + 5);
    expect(pooledAfter).toBeGreaterThan(-Math.log(DEFAULT_SEQUENTIAL_CONFIG.alpha * 0.25));
    expect(afterClose).toBeLessThan(0);
  });

  it('badEventTest reports totals over all steps and rolls back on a worse canary in any step', () => {
    // The canary had 3× stable's error rate in its first step only.
    const bad1 = pair(arm(2000, 120, 0), arm(38000, 760, 0));
    const ok2 = pair(arm(4000, 80, 0), arm(36000, 720, 0));
    const stats = {};
    const t = badEventTest('errors', sum([bad1, ok2]), ok2, DEFAULT_SEQUENTIAL_CONFIG, stats, [counts(bad1)]);
    expect(t.verdict).toBe('worse');
    expect(stats).toMatchObject({ 'errors.canary': 200, 'errors.stable': 1480, 'errors.segments': 2 });
    expect(t.reason).toMatch(/canary 200\/6000/);
  });

  it('errorGate weighs each step at its own split too', () => {
    const s1 = pair(arm(5000, 50), arm(95000, 950));
    const s2 = pair(arm(10000, 100), arm(90000, 900));
    const config = resolveSequentialConfig({ finalGate: { errorRatio: 2, errorFloorRate: 0 } });
    const stats: Record<string, number | string | null> = {};
    const gate = errorGate(sum([s1, s2]), s2, config, stats, [counts(s1)]);
    const expected = -logLikelihoodRatio(
      [
        { canaryBad: 50, canaryRequests: 5000, stableBad: 950, stableRequests: 95000 },
        { canaryBad: 100, canaryRequests: 10000, stableBad: 900, stableRequests: 90000 },
      ],
      2,
    );
    expect(stats['gate.errors.logLR']).toBeCloseTo(expected, 10);
    expect(gate?.passed).toBe(true);
  });
});

describe('decideSequential with earlier steps', () => {
  const quality = { scored: 400, qualityMean: 7, qualityVariance: 4 };

  it('per-step segments against pooling: an incident decides the difference', () => {
    const s1 = pair(arm(1000, 20, 0, quality), arm(19000, 380, 0, quality));
    const s2 = pair(arm(2000, 40, 0, quality), arm(18000, 360, 0, quality));
    const incident = pair(arm(4000, 800, 0), arm(16000, 3200, 0));
    const now = pair(arm(1, 0, 0, quality), arm(1, 0, 0, quality)); // the 40% step just began
    const all = [s1, s2, incident, now];
    const cum = sum(all);
    cum.canary = { ...cum.canary, ...quality };
    cum.stable = { ...cum.stable, ...quality };
    const ctx = context(4000);
    const perStep = decideSequential({
      cumulative: cum,
      step: now,
      context: ctx,
      previousSteps: [s1, s2, incident].map(counts),
    });
    const pooledOnce = decideSequential({
      cumulative: cum,
      step: now,
      context: ctx,
      previousSteps: pooled(cum, now),
    });
    expect(pooledOnce.action).toBe('rollback');
    expect(pooledOnce.reasons[0]).toMatch(/^errors:/);
    expect(perStep.action).not.toBe('rollback');
    expect(perStep.stats['errors.logLR']).toBeLessThan(0);
    expect(perStep.stats['errors.segments']).toBe(4);
    expect(pooledOnce.stats['errors.segments']).toBe(2);
  });

  it('cleans earlier steps like arms: NaN, negatives and bad counts above requests are no evidence', () => {
    const cur = pair(arm(1000, 10, 50), arm(19000, 190, 950));
    const garbage = [
      {
        canary: { requests: Number.NaN, errors: 5, slow: -1 },
        stable: { requests: 100, errors: 1e9, slow: Number.POSITIVE_INFINITY },
      },
    ] as StepCounts[];
    const d = decideSequential({ cumulative: cur, step: cur, context: context(500), previousSteps: garbage });
    const clean = decideSequential({ cumulative: cur, step: cur, context: context(500), previousSteps: [] });
    expect(d.stats['errors.logLR']).toBeCloseTo(clean.stats['errors.logLR'] as number, 12);
    expect(d.stats['errors.stable']).toBe(190 + 100); // the stable errors capped at its 100 requests
    expect(d.action).not.toBe('rollback');
  });

  it('the hold estimate projects only the current step; earlier steps stay as they closed', () => {
    // Slightly more canary errors in the first step: errors lean toward worse and hold the 10% step.
    const s1 = pair(arm(2000, 66, 0), arm(38000, 760, 0));
    const cur = pair(arm(4000, 90, 0, quality), arm(36000, 720, 0, quality));
    const cum = sum([s1, cur]);
    cum.canary = { ...cum.canary, ...quality };
    cum.stable = { ...cum.stable, ...quality };
    const input = {
      cumulative: cum,
      step: cur,
      context: context(1000),
      previousSteps: [counts(s1)],
      stepElapsedMs: 3_600_000,
      canaryElapsedMs: 7_200_000,
      checkIntervalMs: 300_000,
    };
    const e = estimateHold(input);
    const leaning = e?.blockers.find((b) => b.condition === 'errors leaning');
    expect(leaning?.etaMs).toBeGreaterThan(0);
    expect(leaning?.needs).toMatch(/errors lean toward worse/);
  });
});

// ───────────── Monte Carlo: an equal candidate over whole rollouts ─────────────

function binomial(r: Random, n: number, p: number): number {
  if (n <= 0 || p <= 0) return 0;
  if (p >= 1) return n;
  if (p > 0.5) return n - binomial(r, n, 1 - p);
  const mean = n * p;
  if (mean < 30) {
    // Inversion: exact, and cheap while the mean is small.
    const q = 1 - p;
    const s = p / q;
    const a = (n + 1) * s;
    let pr = Math.pow(q, n);
    let u = r.next();
    let x = 0;
    while (u > pr && x < n) {
      u -= pr;
      x++;
      pr *= a / x - s;
    }
    return x;
  }
  return Math.min(n, Math.max(0, Math.round(mean + Math.sqrt(mean * (1 - p)) * r.normal())));
}

interface Traffic {
  /** Requests on the route per 5-minute check. */
  perCheck: number;
  /** Checks per step (12 = an hour at 5-minute checks). */
  checksPerStep: number;
  /** Both arms' error and slow rate outside incidents. */
  errorRate: number;
  slowRate: number;
  /** Chance that a check falls in an incident that multiplies both arms' rates alike by `incidentFactor`. */
  incidentChance: number;
  incidentFactor: number;
}

/**
 * Fraction of rollouts of an equal candidate that the policy rolls back, per-step and pooled on the same
 * traffic. It steps up after `checksPerStep` checks whatever the data say (Ville's bound holds for any
 * schedule, including the policy's own); no judged scores, so only the error and slow tests can fire.
 */
function falseRollbackRates(traffic: Traffic, rollouts: number, seed: number) {
  const config = resolveSequentialConfig({
    alpha: 0.2,
    alphaSplit: { quality: 0.4, errors: 0.25, slow: 0.25, refusals: 0.05, attemptErrors: 0.05 },
  });
  let perStep = 0;
  let pooledRollbacks = 0;
  for (let i = 0; i < rollouts; i++) {
    const r = createRandom(seed * 1_000_003 + i);
    const previous: StepCounts[] = [];
    let cum = pair(arm(0, 0), arm(0, 0));
    let hitPerStep = false;
    let hitPooled = false;
    for (const share of STEPS.slice(0, -1)) {
      let step = pair(arm(0, 0), arm(0, 0));
      for (let k = 0; k < traffic.checksPerStep; k++) {
        const f = r.next() < traffic.incidentChance ? traffic.incidentFactor : 1;
        const errorRate = Math.min(0.9, traffic.errorRate * f);
        const slowRate = Math.min(0.9, traffic.slowRate * f);
        const nc = binomial(r, traffic.perCheck, share / 10000);
        const ns = traffic.perCheck - nc;
        const period = pair(
          arm(nc, binomial(r, nc, errorRate), binomial(r, nc, slowRate)),
          arm(ns, binomial(r, ns, errorRate), binomial(r, ns, slowRate)),
        );
        step = sum([step, period]);
        cum = sum([cum, period]);
        const input = { cumulative: cum, step, context: context(share) };
        if (
          !hitPerStep &&
          decideSequential({ ...input, previousSteps: previous }, config).action === 'rollback'
        )
          hitPerStep = true;
        const pooledInput = { ...input, previousSteps: pooled(cum, step) };
        if (!hitPooled && decideSequential(pooledInput, config).action === 'rollback') hitPooled = true;
        if (hitPerStep && hitPooled) break;
      }
      if (hitPerStep && hitPooled) break;
      previous.push(counts(step));
    }
    if (hitPerStep) perStep++;
    if (hitPooled) pooledRollbacks++;
  }
  return {
    alpha: config.alpha * (config.alphaSplit.errors + config.alphaSplit.slow),
    perStep: perStep / rollouts,
    pooled: pooledRollbacks / rollouts,
  };
}

describe('Monte Carlo: false rollbacks of an equal candidate over 5% → 10% → 20% → 40% → 80%', () => {
  const ROLLOUTS = 2000;
  // Three standard errors of a rate at alpha over ROLLOUTS rollouts: the slack a correct test may need.
  const slack = (alpha: number) => 3 * Math.sqrt((alpha * (1 - alpha)) / ROLLOUTS);
  const base: Traffic = {
    perCheck: 600,
    checksPerStep: 12,
    errorRate: 0.01,
    slowRate: 0.05,
    incidentChance: 0,
    incidentFactor: 1,
  };

  it('steady traffic: both methods stay within alpha', () => {
    const rates = falseRollbackRates(base, ROLLOUTS, 1);
    console.log(
      `steady traffic, ${ROLLOUTS} rollouts: per-step ${rates.perStep}, pooled ${rates.pooled}, alpha ${rates.alpha}`,
    );
    expect(rates.perStep).toBeLessThanOrEqual(rates.alpha + slack(rates.alpha));
    expect(rates.pooled).toBeLessThanOrEqual(rates.alpha + slack(rates.alpha));
  });

  it('incidents that hit both arms alike: per-step stays within alpha, pooling exceeds it', () => {
    // 2% of checks (about one per rollout of 60 checks) see 20× the errors and slow requests on every
    // model: a provider incident, not the candidate.
    const rates = falseRollbackRates({ ...base, incidentChance: 0.02, incidentFactor: 20 }, ROLLOUTS, 2);
    console.log(
      `incidents, ${ROLLOUTS} rollouts: per-step ${rates.perStep}, pooled ${rates.pooled}, alpha ${rates.alpha}`,
    );
    expect(rates.perStep).toBeLessThanOrEqual(rates.alpha + slack(rates.alpha));
    expect(rates.pooled).toBeGreaterThan(rates.alpha + slack(rates.alpha));
  });
});
