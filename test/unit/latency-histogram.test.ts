import { describe, expect, it } from 'vitest';
import {
  LATENCY_BOUNDS,
  LATENCY_BUCKETS,
  countAbove,
  emptyHistogram,
  histogramQuantile,
  latencyBucket,
} from '../../src/store/latency-histogram';
import { sampleEvent, sampleFraction } from '../../src/store/event-writer';

function histogramOf(latencies: number[]): number[] {
  const h = emptyHistogram();
  for (const l of latencies) h[latencyBucket(l)]++;
  return h;
}

/** percentile_cont, as Postgres computes it. */
function percentileCont(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  const rank = q * (s.length - 1);
  const lo = Math.floor(rank);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (rank - lo);
}

describe('latency histogram', () => {
  it('buckets like width_bucket: [bound(i-1), bound(i)), below 1 ms in 0, from 2^20 ms in the last', () => {
    expect(LATENCY_BUCKETS).toBe(202);
    expect(latencyBucket(0)).toBe(0);
    expect(latencyBucket(0.999)).toBe(0);
    expect(latencyBucket(1)).toBe(1);
    expect(latencyBucket(LATENCY_BOUNDS[10])).toBe(11);
    expect(latencyBucket(LATENCY_BOUNDS[10] - 1e-9)).toBe(10);
    expect(latencyBucket(2 ** 20)).toBe(201);
    expect(latencyBucket(1e12)).toBe(201);
  });

  it('reads a p95 at most one bucket (7.2%) above percentile_cont, never below, on dense data', () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (const median of [3, 80, 800, 20_000]) {
      const values = Array.from(
        { length: 5000 },
        () => median * Math.exp(0.6 * (rand() + rand() + rand() - 1.5)),
      );
      const exact = percentileCont(values, 0.95);
      const read = histogramQuantile(histogramOf(values), 0.95)!;
      expect(read).toBeGreaterThanOrEqual(exact);
      expect(read / exact).toBeLessThanOrEqual(2 ** (1 / 10) + 1e-9);
    }
    expect(histogramQuantile(emptyHistogram(), 0.95)).toBeNull();
  });

  it('counts slow requests exactly above a threshold that is a bucket edge, and above the next edge otherwise', () => {
    const values = [5, 10, 50, 100, 101, 200, 5000];
    const h = histogramOf(values);
    const edge = LATENCY_BOUNDS[70]; // 128 ms
    expect(countAbove(h, edge)).toBe(values.filter((v) => v > edge).length);
    expect(countAbove(h, 100.5)).toBe(2); // 101 shares 100.5's bucket: the threshold rises to its edge
    expect(countAbove(h, null)).toBe(0);
    expect(countAbove(h, 0.5)).toBe(7);
  });
});

describe('stable sampling', () => {
  it('keeps a request-id hashed share of stable events with weight 1/rate, all canary and shadow events', () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => `req-${i}`);
    const kept = ids.filter(
      (id) => sampleEvent({ requestId: id, route: 'r', tag: 'stable', target: 't', latencyMs: 1 }, 0.1).keep,
    );
    expect(kept.length / ids.length).toBeGreaterThan(0.09);
    expect(kept.length / ids.length).toBeLessThan(0.11);
    // The same request is in or out every time (no randomness).
    expect(sampleFraction('req-42')).toBe(sampleFraction('req-42'));
    const ev = (tag: 'stable' | 'canary' | 'shadow', keep?: boolean) => ({
      requestId: 'req-1',
      route: 'r',
      tag,
      target: 't',
      latencyMs: 1,
      keep,
    });
    expect(sampleEvent(ev('canary'), 0.1)).toEqual({ keep: true, weight: 1 });
    expect(sampleEvent(ev('shadow'), 0.1)).toEqual({ keep: true, weight: 1 });
    expect(sampleEvent(ev('stable'), 1)).toEqual({ keep: true, weight: 1 });
    const inSample = ids.find((id) => sampleFraction(id) < 0.1)!;
    const outOfSample = ids.find((id) => sampleFraction(id) >= 0.1)!;
    expect(sampleEvent({ ...ev('stable'), requestId: inSample }, 0.1)).toEqual({ keep: true, weight: 10 });
    expect(sampleEvent({ ...ev('stable'), requestId: outOfSample }, 0.1)).toEqual({ keep: false, weight: 0 });
    // A shadowed stable event is kept for its pair but is no part of the weighted sample.
    expect(sampleEvent({ ...ev('stable', true), requestId: outOfSample }, 0.1)).toEqual({
      keep: true,
      weight: 0,
    });
  });
});
