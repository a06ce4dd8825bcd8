/**
 * The metric registry (src/decision/metrics): every entry is complete and reads its value from an arm's
 * statistics; the triggers, the spec's thresholds and the trigger windows are built from it, so a new
 * metric needs no edit elsewhere.
 */
import { describe, expect, it } from 'vitest';
import { METRICS, METRIC_NAMES, metricNamed } from '../../src/decision/metrics';
import { parseRolloutSpec } from '../../src/decision/config/rollout-spec';
import {
  defaultTriggers,
  evaluateTriggers,
  triggerMetricsByWindow,
  type ArmStats,
} from '../../src/decision/policy';
import { triggerSpecsOf } from '../../workflows/triggers';

const stats: ArmStats = {
  requests: 80,
  errors: 4,
  slow: 3,
  scored: 20,
  qualityMean: 0.8,
  qualityVariance: 0.5,
  costUsd: 0.8,
  p95LatencyMs: 900,
  refusals: 20,
  refusalKinds: { unsupported_parameter: 20 },
  attempts: 100,
  attemptErrors: 10,
};

describe('the metric registry', () => {
  it('has the seed’s four and the refusal and attempt-error rates, each complete and uniquely named', () => {
    expect(METRIC_NAMES).toEqual([
      'error_rate',
      'avg_quality_score',
      'p95_latency_ms',
      'cost_per_request',
      'refusal_rate',
      'attempt_error_rate',
    ]);
    expect(new Set(METRIC_NAMES).size).toBe(METRICS.length);
    for (const m of METRICS) {
      expect(m.name).toMatch(/^[a-z][a-z0-9_]*$/);
      expect(m.description.length).toBeGreaterThan(10);
      expect(['above', 'below']).toContain(m.direction);
      expect(['short', 'long']).toContain(m.window);
      if (m.defaultThreshold !== undefined)
        expect(m.threshold.safeParse(m.defaultThreshold).success).toBe(true);
    }
    expect(() => metricNamed('nope')).toThrow(/unknown metric 'nope' \(known: error_rate, /);
  });

  it('every metric reads its value and sample from an arm', () => {
    const read = Object.fromEntries(METRICS.map((m) => [m.name, m.read(stats)]));
    expect(read).toEqual({
      error_rate: { value: 0.05, requests: 80, scores: 20 },
      avg_quality_score: { value: 0.8, requests: 80, scores: 20 },
      p95_latency_ms: { value: 900, requests: 80, scores: 20 },
      cost_per_request: { value: 0.01, requests: 80, scores: 20 },
      // Refusals are per request sent: the served ones plus the refused ones.
      refusal_rate: { value: 0.2, requests: 100, scores: 20 },
      attempt_error_rate: { value: 0.1, requests: 80, scores: 20 },
    });
  });

  it('triggers: the metrics with a default threshold by default, the others when a spec sets one', () => {
    expect(defaultTriggers().map((t) => t.metric)).toEqual([
      'error_rate',
      'avg_quality_score',
      'p95_latency_ms',
      'cost_per_request',
    ]);
    const spec = parseRolloutSpec({
      route: 'support-bot',
      candidate: 'openai:gpt-4o',
      triggers: {
        thresholds: { refusal_rate: 0.5, attempt_error_rate: 0.2 },
        windowMinutes: { short: 1, long: 2 },
      },
    });
    const triggers = triggerSpecsOf(spec);
    expect(triggers.map((t) => [t.metric, t.threshold, t.windowMinutes, t.direction])).toEqual([
      ['error_rate', 0.05, 1, 'above'],
      ['avg_quality_score', 0.5, 2, 'below'],
      ['p95_latency_ms', 30000, 1, 'above'],
      ['cost_per_request', 0.1, 2, 'above'],
      ['refusal_rate', 0.5, 1, 'above'],
      ['attempt_error_rate', 0.2, 1, 'above'],
    ]);
    const heavy = { ...stats, refusals: 400 };
    const r = evaluateTriggers(triggers, triggerMetricsByWindow(triggers, { 1: heavy, 2: heavy }));
    expect(r.fired.map((f) => f.metric)).toEqual(['refusal_rate']);
    expect(r.fired[0].reason).toMatch(/^refusal_rate over 1 min: 0\.8333 > 0\.5 on 480 requests/);
    // Values are shown in their metric's unit.
    expect(r.results.find((x) => x.metric === 'p95_latency_ms')?.reason).toMatch(/900 ms not > 30000/);
  });

  it('the spec’s thresholds are the registry’s names, each with its own bounds', () => {
    const base = { route: 'support-bot', candidate: 'openai:gpt-4o' };
    expect(() => parseRolloutSpec({ ...base, triggers: { thresholds: { refusal_rate: 2 } } })).toThrow(
      /refusal_rate/,
    );
    expect(() => parseRolloutSpec({ ...base, triggers: { thresholds: { refusals: 0.1 } } })).toThrow(
      /refusals/,
    );
  });
});
