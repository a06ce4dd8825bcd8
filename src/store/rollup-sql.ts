/**
 * The upserts that keep the rollups (request_rollups per minute, request_rollups_hourly per hour; see
 * 006_partitioned_events.sql) in step with the events: one per level, inside the statement that writes the
 * events (event-writer.ts) or their scores (activities/scoring.ts), so a rollup never misses or double-counts
 * a committed row. Provider attempts and the failed ones among them (009_attempts_per_request.sql) are summed
 * beside the requests. Rows are upserted in key order (minutes, then hours, in every statement), so two statements
 * in flight take their row locks in one order and cannot deadlock.
 */
export const ROLLUP_LEVELS = [
  { table: 'request_rollups', column: 'minute', width: '1 minute' },
  { table: 'request_rollups_hourly', column: 'hour', width: '1 hour' },
] as const;

const KEY = 'route, tag, %T, target, routing_version, error_class, fallback';
const ORIGIN = `TIMESTAMPTZ '2000-01-01 00:00:00+00'`;

/** Adds the events of `source` (columns of request_events) to one level's counts, sums and histograms. */
export function eventRollupUpsert(level: (typeof ROLLUP_LEVELS)[number], source: string): string {
  const t = level.table;
  return `INSERT INTO ${t} (${KEY.replace('%T', level.column)}, requests, latency_sum_ms, cost_usd, latency_hist,
  attempts, attempt_errors)
SELECT route, tag, date_bin('${level.width}', created_at, ${ORIGIN}), target, coalesce(routing_version, 0),
  coalesce(error_class, ''), fallback_depth > 0, count(*), sum(latency_ms), sum(cost_usd),
  rollup_hist(array_agg(rollup_bucket(latency_ms))), sum(attempts), sum(attempt_errors)
FROM ${source} GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
ON CONFLICT (${KEY.replace('%T', level.column)}) DO UPDATE
  SET requests = ${t}.requests + excluded.requests,
      latency_sum_ms = ${t}.latency_sum_ms + excluded.latency_sum_ms,
      cost_usd = ${t}.cost_usd + excluded.cost_usd,
      latency_hist = rollup_hist_add(${t}.latency_hist, excluded.latency_hist),
      attempts = ${t}.attempts + excluded.attempts,
      attempt_errors = ${t}.attempt_errors + excluded.attempt_errors`;
}

/** Adds the quality scores of `source` (scored rows of request_events) to one level. */
export function scoreRollupUpsert(level: (typeof ROLLUP_LEVELS)[number], source: string): string {
  const t = level.table;
  return `INSERT INTO ${t} (${KEY.replace('%T', level.column)}, requests, latency_sum_ms, cost_usd, latency_hist,
  scored, score_sum, score_sq_sum)
SELECT route, tag, date_bin('${level.width}', created_at, ${ORIGIN}), target, coalesce(routing_version, 0),
  coalesce(error_class, ''), fallback_depth > 0, 0, 0, 0, '{}', count(*), sum(quality_score),
  sum(quality_score * quality_score)
FROM ${source} WHERE quality_score IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
ON CONFLICT (${KEY.replace('%T', level.column)}) DO UPDATE
  SET scored = ${t}.scored + excluded.scored,
      score_sum = ${t}.score_sum + excluded.score_sum,
      score_sq_sum = ${t}.score_sq_sum + excluded.score_sq_sum`;
}
