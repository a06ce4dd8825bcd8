/** Metric checks: each measurement assessed against its conditions, and folded into the check's state. */
import { describe, expect, it } from 'vitest';
import { metricCheckSchema, assess, type MetricCheck } from '../../src/decision/analysis/check';
import { foldMeasurement, newCheckState, type CheckState } from '../../src/decision/analysis/tally';
import { asNumber, readJsonPath } from '../../src/decision/analysis/json-path';

const prom = (query = 'sum(rate(errors{route="{{route}}"}[5m]))') => ({
  prometheus: { source: 'prom', query },
});
const check = (extra: Record<string, unknown> = {}): MetricCheck =>
  metricCheckSchema.parse({
    name: 'error-rate',
    provider: prom(),
    successCondition: 'result < 0.05',
    ...extra,
  });
const q = 'q';

describe('assessing a measurement', () => {
  it('success, failure, and the inconclusive band between a success and a failure condition', () => {
    const c = check();
    expect(assess(c, { query: q, value: 0.01 })).toEqual({
      outcome: 'success',
      reason: 'error-rate: result 0.01 meets result < 0.05',
    });
    expect(assess(c, { query: q, value: 0.2 })).toEqual({
      outcome: 'failure',
      reason: 'error-rate: result 0.2 fails result < 0.05',
    });
    const band = check({ failureCondition: 'result >= 0.1' });
    expect(assess(band, { query: q, value: 0.07 })).toEqual({
      outcome: 'inconclusive',
      reason: 'error-rate: inconclusive: result 0.07 meets neither result < 0.05 nor result >= 0.1',
    });
    expect(assess(band, { query: q, value: 0.1 }).outcome).toBe('failure');
    expect(assess(band, { query: q, value: 0.04 }).outcome).toBe('success');
  });

  it('no value, an error or too small a sample is inconclusive, never a success', () => {
    const c = check();
    expect(assess(c, { query: q, value: null })).toEqual({
      outcome: 'inconclusive',
      reason: 'error-rate: inconclusive: no value (result none)',
    });
    expect(
      assess(c, { query: q, value: null, error: "metric source 'prom' unreachable (ECONNREFUSED)" }),
    ).toEqual({
      outcome: 'inconclusive',
      reason: "error-rate: inconclusive: metric source 'prom' unreachable (ECONNREFUSED)",
    });
    // A value that came with an error is not trusted either.
    expect(assess(c, { query: q, value: 0.01, error: 'sample: no data' }).outcome).toBe('inconclusive');
    const sampled = check({
      provider: {
        prometheus: { source: 'prom', query: 'x{a="{{route}}"}', sampleQuery: 'n{a="{{route}}"}' },
      },
      minSample: 100,
    });
    expect(assess(sampled, { query: q, value: 0.01, sample: 99 })).toEqual({
      outcome: 'inconclusive',
      reason: 'error-rate: inconclusive: sample 99 below minSample 100',
    });
    expect(assess(sampled, { query: q, value: 0.01, sample: 100 }).outcome).toBe('success');
    expect(assess(sampled, { query: q, value: 0.01 }).outcome).toBe('inconclusive');
  });

  it('a per-arm check compares the arms; a missing arm is inconclusive', () => {
    const c = check({
      provider: prom('avg(latency{route="{{route}}",arm="{{arm}}"})'),
      successCondition: 'canary <= stable * 1.1',
    });
    expect(assess(c, { query: q, value: 1.05, stable: 1 })).toEqual({
      outcome: 'success',
      reason: 'error-rate: canary 1.05, stable 1 meets canary <= stable * 1.1',
    });
    expect(assess(c, { query: q, value: 1.2, stable: 1 }).outcome).toBe('failure');
    expect(assess(c, { query: q, value: 1.2, stable: null }).outcome).toBe('inconclusive');
  });
});

describe('a check over its measurements', () => {
  const fold = (c: MetricCheck, s: CheckState, value: number | null, at: number, holdAfter = 1000) =>
    foldMeasurement(
      s,
      c,
      { query: q, value, ...(value === null ? { error: 'unreachable' } : {}) },
      at,
      holdAfter,
    );

  it('fails once its failures exceed failureLimit; a failure within it still holds', () => {
    const c = check({ failureLimit: 1 });
    let f = fold(c, newCheckState(c), 0.2, 0);
    expect(f).toMatchObject({ failed: false, state: { verdict: 'failing', failures: 1 } });
    f = fold(c, f.state, 0.01, 100);
    expect(f.state).toMatchObject({ verdict: 'ok', successes: 1, failures: 1, measured: 2 });
    f = fold(c, f.state, 0.3, 200);
    expect(f).toMatchObject({ failed: true, state: { verdict: 'failed', failures: 2 } });
    expect(f.state.last).toMatchObject({ value: 0.3, query: q, outcome: 'failure' });
  });

  it('inconclusive for holdAfter: held, said once per spell; a conclusive measurement ends the spell', () => {
    const c = check();
    let f = fold(c, newCheckState(c), null, 0);
    expect(f).toMatchObject({
      becameHeld: false,
      state: { verdict: 'inconclusive', inconclusiveSinceMs: 0 },
    });
    f = fold(c, f.state, null, 999);
    expect(f.becameHeld).toBe(false);
    f = fold(c, f.state, null, 1000);
    expect(f).toMatchObject({ becameHeld: true, state: { verdict: 'held', alerted: true } });
    f = fold(c, f.state, null, 5000);
    expect(f).toMatchObject({ becameHeld: false, state: { verdict: 'held' } });
    f = fold(c, f.state, 0.01, 6000);
    expect(f.state).toMatchObject({ verdict: 'ok', inconclusiveSinceMs: undefined, alerted: undefined });
    f = fold(c, f.state, null, 7000);
    f = fold(c, f.state, null, 8000);
    expect(f.becameHeld).toBe(true); // a new spell is said again
  });
});

describe('the check schema', () => {
  const refusal = (input: unknown) => {
    const r = metricCheckSchema.safeParse(input);
    if (r.success) throw new Error('expected a refusal');
    return r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  it('names the field and the reason', () => {
    expect(refusal({ name: 'x', provider: prom('x{a={{route}}}'), successCondition: 'result < 1' })).toEqual([
      'provider.prometheus.query: {{route}} must be inside a quoted string, e.g. route="{{route}}" (outside one, a value could change the query)',
    ]);
    expect(refusal({ name: 'x', provider: prom(), successCondition: 'canary < 1' })).toEqual([
      "successCondition: unknown name 'canary' at 1 (known: result, abs(), min(), max())",
    ]);
    expect(
      refusal({
        name: 'x',
        provider: { prometheus: { source: 'http://prom:9090', query: 'up' } },
        successCondition: 'result < 1',
      }),
    ).toEqual([
      'provider.prometheus.source: a metric source configured on the worker (METRIC_SOURCES_FILE), by name, not a URL',
    ]);
    expect(
      refusal({
        name: 'x',
        provider: { web: { source: 'api', path: 'https://evil.example/x' } },
        successCondition: 'result < 1',
      }),
    ).toEqual([
      `provider.web.path: a path (and query) on the source, starting with "/"; the host is the source's`,
    ]);
    expect(refusal({ name: 'x', provider: prom(), successCondition: 'result < 1', minSample: 5 })).toEqual([
      'minSample: needs the sample size: provider.prometheus.sampleQuery or provider.web.sampleJsonPath',
    ]);
    expect(refusal({ name: 'x', provider: { datadog: {} }, successCondition: 'result < 1' })).toEqual([
      'provider: provider is { "prometheus": { source, query } } or { "web": { source, path, jsonPath } }',
    ]);
  });
});

describe('JSON paths', () => {
  const doc = { data: { value: '0.5', items: [{ rate: 3 }], 'p95 ms': 120 } };
  it('reads dotted paths, indexes and quoted keys, and nothing from the prototype', () => {
    expect(readJsonPath(doc, '$')).toBe(doc);
    expect(readJsonPath(doc, '$.data.value')).toBe('0.5');
    expect(readJsonPath(doc, '$.data.items[0].rate')).toBe(3);
    expect(readJsonPath(doc, "$.data['p95 ms']")).toBe(120);
    expect(readJsonPath(doc, '$.data.missing.deeper')).toBeUndefined();
    expect(readJsonPath(doc, '$.data.items[5]')).toBeUndefined();
    expect(readJsonPath(doc, '$.data.constructor')).toBeUndefined();
    expect(() => readJsonPath(doc, '$..value')).toThrow('not a supported JSON path: $..value');
  });
  it('takes finite numbers and numeric strings only', () => {
    expect([
      asNumber(1),
      asNumber('0.5'),
      asNumber('NaN'),
      asNumber(''),
      asNumber(null),
      asNumber(true),
    ]).toEqual([1, 0.5, null, null, null, null]);
  });
});
