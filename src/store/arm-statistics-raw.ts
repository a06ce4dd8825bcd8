/**
 * The arm statistics straight from the raw events (every row, unweighted): the reference the rollups of
 * arm-statistics.ts are tested against (test/events-scale.test.ts, test/refusal-stats.test.ts), and the
 * benchmark's "before". Counted by the same rules: hang-ups left out, refusals counted beside the requests.
 */
import type pg from 'pg';
import { CLIENT_CAUSED_SQL, REFUSAL_KIND_SQL, REFUSAL_SQL } from '../data-plane/providers/blame';
import { countKinds, iso, versionRange, type ArmQuery, type ArmStatsWithFallbacks } from './arm-statistics';

const MINUTE = 60_000;
const NOT_CLIENT_CAUSED = `NOT ${CLIENT_CAUSED_SQL}`;
const REFUSED = REFUSAL_SQL;

const ARM_SQL = `
  SELECT count(*) FILTER (WHERE NOT ${REFUSED})::int               AS requests,
         count(*) FILTER (WHERE NOT ${REFUSED} AND (error_class IS NOT NULL
                             OR ($7::boolean AND error_class IS NULL AND fallback_depth > 0)))::int AS errors,
         count(*) FILTER (WHERE error_class IS NULL AND fallback_depth > 0)::int AS fallbacks,
         count(*) FILTER (WHERE NOT ${REFUSED} AND $5::float8 IS NOT NULL AND latency_ms > $5::float8)::int AS slow,
         count(quality_score) FILTER (WHERE NOT $7::boolean OR fallback_depth = 0)::int AS scored,
         avg(quality_score) FILTER (WHERE NOT $7::boolean OR fallback_depth = 0)::float8 AS quality_mean,
         var_samp(quality_score) FILTER (WHERE NOT $7::boolean OR fallback_depth = 0)::float8 AS quality_variance,
         coalesce(sum(cost_usd), 0)::float8                       AS cost_usd,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE NOT ${REFUSED})::float8 AS p95_latency_ms,
         count(*) FILTER (WHERE ${REFUSED})::int                   AS refusals,
         coalesce(array_agg(${REFUSAL_KIND_SQL}) FILTER (WHERE ${REFUSED}), '{}') AS refusal_kinds,
         coalesce(sum(attempts) FILTER (WHERE NOT ${REFUSED}), 0)::int AS attempts,
         coalesce(sum(attempt_errors) FILTER (WHERE NOT ${REFUSED}), 0)::int AS attempt_errors
    FROM request_events
   WHERE route = $1 AND tag = $2
     AND created_at >= $3::timestamptz AND created_at < $4::timestamptz
     AND ($6::text IS NULL OR target = $6::text)
     AND ($9::bigint IS NULL OR coalesce(routing_version, 0) = $9::bigint)
     AND ${versionRange('coalesce(routing_version, 0)', '$8', '$10')}
     AND ${NOT_CLIENT_CAUSED}`;

/**
 * The arm's statistics straight from the raw events (every row, unweighted): the reference the rollups are
 * tested against, and the query decisions ran before the rollups.
 */
export async function armStatsRaw(pool: pg.Pool, q: ArmQuery): Promise<ArmStatsWithFallbacks> {
  const { rows } = await pool.query(ARM_SQL, [
    q.route,
    q.tag,
    iso(q.fromMs),
    iso(q.toMs ?? Date.now() + MINUTE),
    q.slowThresholdMs ?? null,
    q.target ?? null,
    q.primaryOnly === true,
    q.fromVersion ?? null,
    q.routingVersion ?? null,
    q.toVersion ?? null,
  ]);
  const r = rows[0];
  return {
    requests: r.requests,
    errors: r.errors,
    slow: r.slow,
    scored: r.scored,
    qualityMean: r.quality_mean,
    qualityVariance: r.quality_variance,
    costUsd: r.cost_usd,
    p95LatencyMs: r.p95_latency_ms,
    fallbacks: r.fallbacks,
    refusals: r.refusals,
    refusalKinds: countKinds((r.refusal_kinds as string[]).map((k) => [k, 1])),
    attempts: r.attempts,
    attemptErrors: r.attempt_errors,
  };
}

const STABLE_P95_RAW_SQL = `
  SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)::float8 AS p95, count(*)::int AS n
    FROM request_events
   WHERE route = $1 AND tag = 'stable' AND error_class IS NULL
     AND created_at >= $2::timestamptz AND created_at < $3::timestamptz`;

/** The stable arm's p95 latency of successful calls from the raw events (the reference; see armStatsRaw). */
export async function stableP95Raw(
  pool: pg.Pool,
  route: string,
  fromMs: number,
  toMs: number,
): Promise<number | null> {
  const { rows } = await pool.query(STABLE_P95_RAW_SQL, [route, iso(fromMs), iso(toMs)]);
  return rows[0].n >= 20 ? rows[0].p95 : null;
}
