/**
 * The latency histogram of the request rollups (src/store/migrations/006_partitioned_events.sql): bucket 0
 * below 1 ms, bucket i for [2^((i-1)/10), 2^(i/10)) ms, bucket 201 from 2^20 ms (17.5 min) up. SQL computes
 * buckets with `width_bucket(latency, LATENCY_BOUNDS)` (function rollup_bucket), so these bounds must stay
 * the very same numbers (test/unit/latency-histogram.test.ts checks both sides agree).
 *
 * Resolution: a bucket is 2^(1/10) = 7.2% wide. A quantile read from the histogram is the upper edge of the
 * bucket that holds it: never below the exact value, and at most one bucket width above it.
 */
export const LATENCY_BOUNDS: readonly number[] = Array.from({ length: 201 }, (_, i) => 2 ** (i / 10));
/** Buckets 0..201. */
export const LATENCY_BUCKETS = LATENCY_BOUNDS.length + 1;

/** The bucket of a latency, as SQL's width_bucket(latency, LATENCY_BOUNDS) gives it. */
export function latencyBucket(ms: number): number {
  let lo = 0;
  let hi = LATENCY_BOUNDS.length; // first bound > ms, by binary search
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (LATENCY_BOUNDS[mid] <= ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Upper edge of a bucket (the top bucket, which has none, reports its lower edge). */
export function bucketUpperEdge(bucket: number): number {
  return LATENCY_BOUNDS[Math.min(bucket, LATENCY_BOUNDS.length - 1)];
}

/**
 * The q-quantile of a histogram (counts by bucket, possibly weighted), in the sense of percentile_cont: the
 * upper edge of the bucket holding the ceil(1 + q (n - 1))-th smallest latency. Null when it is empty.
 */
export function histogramQuantile(counts: readonly number[], q: number): number | null {
  let total = 0;
  for (const c of counts) total += c || 0;
  if (!(total > 0)) return null;
  // Weighted counts are fractional: a hair of tolerance keeps 0.1 + 0.2 from missing its rank.
  const rank = Math.ceil(1 + q * (total - 1) - 1e-9);
  let cum = 0;
  for (let b = 0; b < counts.length; b++) {
    cum += counts[b] || 0;
    if (cum >= rank - 1e-9) return bucketUpperEdge(b);
  }
  return bucketUpperEdge(counts.length - 1);
}

/**
 * How many requests were slower than `thresholdMs`: the counts of the buckets at or above the threshold
 * rounded up to a bucket edge. Exact when the threshold is an edge, as every p95 read from a histogram is
 * (the slow threshold is the baseline p95); otherwise the threshold is in effect raised by under 7.2%.
 */
export function countAbove(counts: readonly number[], thresholdMs: number | null | undefined): number {
  if (thresholdMs === null || thresholdMs === undefined || !Number.isFinite(thresholdMs)) return 0;
  let from = latencyBucket(thresholdMs);
  // The threshold's own bucket starts at the threshold only when it is an edge: then it counts.
  if (from > 0 && LATENCY_BOUNDS[from - 1] !== thresholdMs) from++;
  else if (from === 0) from = thresholdMs < 0 ? 0 : 1;
  let n = 0;
  for (let b = from; b < counts.length; b++) n += counts[b] || 0;
  return n;
}

/** Adds a sparse histogram from SQL (an array whose subscripts are bucket numbers) into dense counts. */
export function addSparse(into: number[], lower: number, values: readonly (number | null)[]): void {
  for (let i = 0; i < values.length; i++) into[lower + i] = (into[lower + i] ?? 0) + Number(values[i] ?? 0);
}

export function emptyHistogram(): number[] {
  return new Array<number>(LATENCY_BUCKETS).fill(0);
}
