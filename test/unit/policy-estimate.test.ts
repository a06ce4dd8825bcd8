import { describe, expect, it } from 'vitest';
import {
  DEFAULT_STEPS,
  decide as decideResolved,
  estimate,
  estimateHold,
  roughCount,
  roughDuration,
  type ArmPair,
  type ArmStats,
  resolvePolicy,
  type HoldEstimateInput,
  type StepContext,
} from '../../src/decision/policy/index';

/** A check on the default policy, resolved as a rollout resolves it when it starts. */
const decide = (input: HoldEstimateInput) => decideResolved({ ...input, policy: resolvePolicy() });

const MIN = 60_000;

function context(shareBps: number): StepContext {
  const steps = [...DEFAULT_STEPS];
  const stepIndex = steps.indexOf(shareBps);
  return { shareBps, stepIndex, steps, isFinalStep: steps[stepIndex + 1] === 10000 };
}

/** An arm as the SQL reports it: `requests` with 1% errors, 5% slow, `scored` scores of mean 7, variance 4. */
function arm(requests: number, scored: number, extra: Partial<ArmStats> = {}): ArmStats {
  return {
    requests,
    errors: Math.round(requests * 0.01),
    slow: Math.round(requests * 0.05),
    scored,
    qualityMean: scored > 0 ? 7 : null,
    qualityVariance: scored >= 2 ? 4 : null,
    costUsd: 0,
    p95LatencyMs: 800,
    ...extra,
  };
}

/**
 * A route with `rps` requests/s, every `judgeEvery`-th answer judged, whose canary has served
 * `shareBps` for `stepMinutes` after `beforeMinutes` at earlier steps, with data exactly as expected for a
 * candidate as good as stable.
 */
function route(opts: {
  rps: number;
  shareBps: number;
  stepMinutes: number;
  before?: { canary: number; stable: number; minutes: number };
  judged?: number;
}): HoldEstimateInput {
  const judged = opts.judged ?? 1;
  const share = opts.shareBps / 10000;
  const stepRequests = opts.rps * 60 * opts.stepMinutes;
  const c = stepRequests * share;
  const s = stepRequests - c;
  const step: ArmPair = {
    canary: arm(Math.round(c), Math.round(c * judged)),
    stable: arm(Math.round(s), Math.round(s * judged)),
  };
  const b = opts.before ?? { canary: 0, stable: 0, minutes: 0 };
  const cumulative: ArmPair = {
    canary: arm(Math.round(c + b.canary), Math.round((c + b.canary) * judged)),
    stable: arm(Math.round(s + b.stable), Math.round((s + b.stable) * judged)),
  };
  // The earlier steps (if any) as one closed step.
  const before = (key: 'canary' | 'stable') => ({
    requests: cumulative[key].requests - step[key].requests,
    errors: cumulative[key].errors - step[key].errors,
    slow: cumulative[key].slow - step[key].slow,
  });
  return {
    cumulative,
    step,
    previousSteps: opts.before ? [{ canary: before('canary'), stable: before('stable') }] : [],
    context: context(opts.shareBps),
    stepElapsedMs: opts.stepMinutes * MIN,
    canaryElapsedMs: (opts.stepMinutes + b.minutes) * MIN,
    checkIntervalMs: 5 * MIN,
  };
}

describe('hold estimate', () => {
  it('a step short of its minimum: how many canary requests, and when at the current rate', () => {
    // 2 requests/s, 5%: 6 canary requests a minute; after 20 minutes 120 of the 1000 a step needs.
    const e = estimateHold(route({ rps: 2, shareBps: 500, stepMinutes: 20 }))!;
    expect(e.binding.condition).toBe('step minimum (requests)');
    expect(e.binding.more).toBeGreaterThanOrEqual(880);
    expect(e.binding.more).toBeLessThanOrEqual(890);
    // 880 more at 6 a minute: 147 minutes, so the check at 150 minutes.
    expect(e.etaMs).toBe(150 * MIN);
    expect(e.rates.canaryRequestsPerMin).toBeCloseTo(6, 6);
    expect(e.summary).toBe(
      'step minimum (requests): this step needs about 880 more canary requests (minimum 1000); expected in about 2h 30m at the current 6 canary requests/min',
    );
  });

  it('the final gate: judged answers needed to show the candidate within 2% of stable, and the time', () => {
    // 12 requests/s, 1 in 20 judged, at 40% for 30 minutes after 2 hours at lower shares.
    const input = route({
      rps: 12,
      shareBps: 4000,
      stepMinutes: 30,
      judged: 0.05,
      before: { canary: 10_000, stable: 76_000, minutes: 120 },
    });
    expect(decide(input).action).toBe('hold');
    const e = estimateHold(input)!;
    expect(e.binding.condition).toBe('final gate (quality)');
    expect(e.binding.needs).toMatch(
      /^about [\d ]+ more judged canary answers to show the candidate within 2% of stable$/,
    );
    // Analytically: the gate wants I = 2·log(20)/δ² with δ = 0.14 and I = 1/(4/n_c + 4/n_s); the arms grow
    // at 14.4 and 21.6 judged answers a minute from 932 and 4 448.
    const target = (2 * Math.log(20)) / 0.14 ** 2;
    const info = (t: number) => 1 / (4 / (932 + 14.4 * t) + 4 / (4448 + 21.6 * t));
    let t = 0;
    while (info(t) < target) t += 0.1;
    expect(e.binding.more! / 14.4).toBeGreaterThan(t * 0.98);
    expect(e.binding.more! / 14.4).toBeLessThan(t * 1.02);
    // Rounded up to a check (every 5 minutes).
    expect(e.etaMs! % (5 * MIN)).toBe(0);
    expect(Math.abs(e.etaMs! - t * MIN)).toBeLessThanOrEqual(5 * MIN);
    expect(e.summary).toMatch(
      /^final gate \(quality\): about [\d ]+ more judged .*; expected in about \d+m at the current 14 judged canary answers\/min$/,
    );
  });

  it('agrees with the policy: data arriving as projected promote at the estimated check', () => {
    // Feed the policy the expected data check by check; the step must advance at the estimate's check.
    const base = {
      rps: 12,
      shareBps: 4000,
      judged: 0.05,
      before: { canary: 10_000, stable: 76_000, minutes: 120 },
    };
    const e = estimateHold(route({ ...base, stepMinutes: 30 }))!;
    let promotedAt: number | null = null;
    for (let minutes = 35; minutes <= 24 * 60 && promotedAt === null; minutes += 5) {
      if (decide(route({ ...base, stepMinutes: minutes })).action === 'promote-step') promotedAt = minutes;
    }
    expect(promotedAt).not.toBeNull();
    expect((promotedAt! - 30) * MIN).toBe(e.etaMs);
  });

  it('lists every holding condition, longest first, and names the binding one', () => {
    const input = route({
      rps: 12,
      shareBps: 4000,
      stepMinutes: 1,
      judged: 0.1,
      before: { canary: 10_000, stable: 76_000, minutes: 120 },
    });
    const e = estimateHold(input)!;
    const conditions = e.blockers.map((b) => b.condition);
    expect(conditions).toContain('step minimum (requests)');
    expect(conditions).toContain('final gate (quality)');
    expect(e.binding).toBe(e.blockers[0]);
    for (let i = 1; i < e.blockers.length; i++)
      expect(e.blockers[i - 1].etaMs!).toBeGreaterThanOrEqual(e.blockers[i].etaMs!);
  });

  it('evidence leaning toward worse: how much more data would let it fade if the candidate is equal', () => {
    // 5%, 2 000 canary requests with 32 errors where 20 were expected: held, not rolled back.
    const input = route({ rps: 12, shareBps: 500, stepMinutes: 56 });
    input.cumulative.canary.errors = 32;
    input.step.canary.errors = 32;
    const d = decide(input);
    expect(d.action).toBe('hold');
    expect(d.reasons.at(-1)).toMatch(/errors evidence leans toward worse/);
    const e = estimateHold(input)!;
    expect(e.binding.condition).toBe('errors leaning');
    expect(e.binding.unit).toBe('requests');
    expect(e.binding.needs).toMatch(
      /^errors lean toward worse \(e-value above 4\); about [\d ]+ more canary requests for that to fade if the candidate is as good as stable$/,
    );
    expect(e.etaMs).toBeGreaterThan(0);
  });

  it('no traffic to estimate from, and no hold at all', () => {
    const idle = route({ rps: 0, shareBps: 500, stepMinutes: 10 });
    const e = estimateHold(idle)!;
    expect(e.etaMs).toBeNull();
    expect(e.binding.more).toBeNull();
    expect(e.summary).toMatch(/no canary traffic yet to estimate from$/);
    expect(e.summary).not.toMatch(/NaN|Infinity|undefined/);
    // A step with its sample and nothing against it promotes: nothing to estimate.
    const ready = route({ rps: 50, shareBps: 500, stepMinutes: 10 });
    expect(decide(ready).action).toBe('promote-step');
    expect(estimateHold(ready)).toBeNull();
    expect(estimateHold({ ...ready, context: context(10000) })).toBeNull();
  });

  it('uses the whole canary phase when the step is too young to have a rate', () => {
    // 1 minute into 10%: 12 canary requests in the step, too few; the phase says 2 req/s in total.
    const input = route({
      rps: 2,
      shareBps: 1000,
      stepMinutes: 0.1,
      before: { canary: 1000, stable: 19000, minutes: 166.7 },
    });
    const e = estimateHold(input)!;
    expect(e.rates.canaryRequestsPerMin).toBeCloseTo(12, 0);
  });

  it("estimate() answers for the sequential policy only, with the rollout's overrides", () => {
    const input = route({ rps: 2, shareBps: 500, stepMinutes: 20 });
    expect(estimate({ ...input, policy: resolvePolicy({ policy: 'ratio' }) })).toBeNull();
    const custom = estimate({
      ...input,
      policy: resolvePolicy({ sequential: { promotion: { minCanaryRequestsPerStep: 200 } } }),
    })!;
    expect(custom.binding.more).toBeGreaterThanOrEqual(80);
    expect(custom.binding.more).toBeLessThanOrEqual(81);
    expect(custom.etaMs).toBe(15 * MIN);
  });

  it('says counts and durations as a person would', () => {
    expect(roughCount(57.2)).toBe('58');
    expect(roughCount(1734)).toBe('about 1 700');
    expect(roughCount(123_456)).toBe('about 120 000');
    expect(roughDuration(40_000)).toBe('40s');
    expect(roughDuration(12 * MIN)).toBe('12m');
    expect(roughDuration(130 * MIN)).toBe('2h 10m');
    expect(roughDuration(3 * 24 * 60 * MIN + 4 * 60 * MIN)).toBe('3d 4h');
  });
});
