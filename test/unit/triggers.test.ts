import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TRIGGERS,
  defaultTriggers,
  evaluateTriggers,
  legacyGreaterThan,
  triggerMetricsByWindow,
  triggerMetricsFromArm,
  type ArmStats,
  type TriggerMetric,
  type TriggerMetricName,
} from '../../src/decision/policy/index';

const metric = (value: number | null, requests = 100, scores = 50): TriggerMetric => ({
  value,
  requests,
  scores,
});

/** Healthy values for all four, overridden per test. */
function metrics(over: Partial<Record<TriggerMetricName, TriggerMetric>> = {}) {
  return {
    error_rate: metric(0.01),
    avg_quality_score: metric(0.875),
    p95_latency_ms: metric(2500),
    cost_per_request: metric(0.01),
    ...over,
  };
}

const firedNames = (r: ReturnType<typeof evaluateTriggers>) => r.fired.map((f) => f.metric);

describe('default triggers', () => {
  it("are the seed's four, each with an explicit direction and window", () => {
    expect(DEFAULT_TRIGGERS.map((t) => [t.metric, t.threshold, t.direction, t.windowMinutes])).toEqual([
      ['error_rate', 0.05, 'above', 15],
      ['avg_quality_score', 0.5, 'below', 60],
      ['p95_latency_ms', 30000, 'above', 15],
      ['cost_per_request', 0.1, 'above', 60],
    ]);
    expect(DEFAULT_TRIGGERS.map((t) => t.minSample)).toEqual([20, 10, 20, 20]);
  });

  it('healthy metrics fire nothing, and every result carries value, threshold, direction and window', () => {
    const r = evaluateTriggers(DEFAULT_TRIGGERS, metrics());
    expect(r.fired).toEqual([]);
    expect(r.results).toHaveLength(4);
    const quality = r.results.find((x) => x.metric === 'avg_quality_score')!;
    expect(quality).toMatchObject({
      value: 0.875,
      threshold: 0.5,
      direction: 'below',
      windowMinutes: 60,
      status: 'ok',
      fired: false,
    });
  });

  it('good quality (0.875, a 4.5 on 1-5) does NOT fire; bad quality (0.375, a 2.5) does', () => {
    expect(
      firedNames(evaluateTriggers(DEFAULT_TRIGGERS, metrics({ avg_quality_score: metric(0.875) }))),
    ).toEqual([]);
    const r = evaluateTriggers(DEFAULT_TRIGGERS, metrics({ avg_quality_score: metric(0.375) }));
    expect(firedNames(r)).toEqual(['avg_quality_score']);
    expect(r.fired[0].reason).toMatch(/avg_quality_score over 60 min: 0\.3750 < 0\.5 on 50 scores/);
  });

  it('fires on each "above" metric past its threshold', () => {
    const r = evaluateTriggers(
      DEFAULT_TRIGGERS,
      metrics({ error_rate: metric(0.06), p95_latency_ms: metric(31000), cost_per_request: metric(0.2) }),
    );
    expect(firedNames(r)).toEqual(['error_rate', 'p95_latency_ms', 'cost_per_request']);
  });

  it('thresholds are strict: exactly at the threshold does not fire', () => {
    const r = evaluateTriggers(
      DEFAULT_TRIGGERS,
      metrics({
        error_rate: metric(0.05),
        avg_quality_score: metric(0.5),
        p95_latency_ms: metric(30000),
        cost_per_request: metric(0.1),
      }),
    );
    expect(r.fired).toEqual([]);
  });

  it('minimum-sample guard: 1 failed request out of 1 is not an emergency', () => {
    const r = evaluateTriggers(DEFAULT_TRIGGERS, metrics({ error_rate: metric(1, 1) }));
    expect(r.fired).toEqual([]);
    const e = r.results.find((x) => x.metric === 'error_rate')!;
    expect(e.status).toBe('insufficient-sample');
    expect(e.sampleSize).toBe(1);
    // …but 19 requests is still short, 20 is enough.
    expect(firedNames(evaluateTriggers(DEFAULT_TRIGGERS, metrics({ error_rate: metric(0.1, 19) })))).toEqual(
      [],
    );
    expect(firedNames(evaluateTriggers(DEFAULT_TRIGGERS, metrics({ error_rate: metric(0.1, 20) })))).toEqual([
      'error_rate',
    ]);
  });

  it('the quality guard counts scores, not requests', () => {
    const few = evaluateTriggers(DEFAULT_TRIGGERS, metrics({ avg_quality_score: metric(0, 1000, 9) }));
    expect(few.fired).toEqual([]);
    expect(few.results[1].status).toBe('insufficient-sample');
    const enough = evaluateTriggers(DEFAULT_TRIGGERS, metrics({ avg_quality_score: metric(0, 1000, 10) }));
    expect(firedNames(enough)).toEqual(['avg_quality_score']);
  });

  it('missing or non-finite values are "no data", never a firing', () => {
    const r = evaluateTriggers(DEFAULT_TRIGGERS, { error_rate: metric(NaN), p95_latency_ms: metric(null) });
    expect(r.fired).toEqual([]);
    expect(r.results.map((x) => x.status)).toEqual(['no-data', 'no-data', 'no-data', 'no-data']);
  });

  it('thresholds and minimum samples are configurable', () => {
    const strict = defaultTriggers({
      thresholds: { error_rate: 0.02, avg_quality_score: 0.9 },
      minRequests: 5,
    });
    expect(strict[0]).toMatchObject({ threshold: 0.02, minSample: 5 });
    expect(strict[2].threshold).toBe(30000); // untouched
    expect(firedNames(evaluateTriggers(strict, metrics({ error_rate: metric(0.03, 5) })))).toEqual([
      'error_rate',
      'avg_quality_score',
    ]);
  });
});

describe("legacyGreaterThan (the seed's flaw, kept for comparison)", () => {
  const legacy = legacyGreaterThan();

  it('compares every metric with ">" and has no sample guard', () => {
    expect(legacy.every((t) => t.direction === 'above' && t.minSample === 0 && t.legacy)).toBe(true);
  });

  it('fires on GOOD quality (0.875 > 0.5) and misses a collapse (0)', () => {
    const good = evaluateTriggers(legacy, metrics({ avg_quality_score: metric(0.875) }));
    expect(firedNames(good)).toEqual(['avg_quality_score']);
    expect(good.fired[0].reason).toMatch(/legacy greater-than rule/);
    expect(firedNames(evaluateTriggers(legacy, metrics({ avg_quality_score: metric(0) })))).toEqual([]);
  });

  it('fires on a single failed request', () => {
    expect(
      firedNames(
        evaluateTriggers(legacy, metrics({ avg_quality_score: metric(0), error_rate: metric(1, 1) })),
      ),
    ).toEqual(['error_rate']);
  });

  it('does not modify the specs it is given', () => {
    expect(DEFAULT_TRIGGERS[1].direction).toBe('below');
  });
});

describe('metrics from arm statistics', () => {
  const stats: ArmStats = {
    requests: 200,
    errors: 12,
    slow: 9,
    scored: 40,
    qualityMean: 0.725,
    qualityVariance: 0.05,
    costUsd: 3,
    p95LatencyMs: 4200,
  };

  it('derives the four metrics and their sample sizes', () => {
    const m = triggerMetricsFromArm(stats);
    expect(m.error_rate).toEqual({ value: 0.06, requests: 200, scores: 40 });
    expect(m.avg_quality_score.value).toBe(0.725);
    expect(m.p95_latency_ms.value).toBe(4200);
    expect(m.cost_per_request.value).toBeCloseTo(0.015, 12);
  });

  it('an empty window has no values (not 0/0 = NaN)', () => {
    const m = triggerMetricsFromArm({
      ...stats,
      requests: 0,
      errors: 0,
      scored: 0,
      qualityMean: null,
      costUsd: 0,
      p95LatencyMs: null,
    });
    // Every metric of the registry, the refusal and attempt-error rates too.
    expect(Object.values(m).map((x) => x.value)).toEqual([null, null, null, null, null, null]);
  });

  it("takes each trigger's metric from the stats of its own window", () => {
    const last15 = { ...stats, requests: 100, errors: 10 }; // 10% errors in the last 15 min
    const last60 = { ...stats, requests: 400, errors: 12, qualityMean: 0.375 };
    const m = triggerMetricsByWindow(DEFAULT_TRIGGERS, { 15: last15, 60: last60 });
    expect(m.error_rate!.value).toBe(0.1);
    expect(m.avg_quality_score!.value).toBe(0.375);
    expect(firedNames(evaluateTriggers(DEFAULT_TRIGGERS, m))).toEqual(['error_rate', 'avg_quality_score']);
  });
});
