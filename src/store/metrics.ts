import type pg from 'pg';
import type { ArmStats } from '../policy';
import { CLIENT_CAUSED_SQL } from '../providers/blame';

/**
 * Windowed statistics of request events, per tag, computed in SQL so that only a few numbers travel to the
 * workflow (and into its history). Times are epoch milliseconds chosen by the workflow.
 */
export type Tag = 'stable' | 'canary' | 'shadow';

export interface ArmQuery {
  route: string;
  tag: Tag;
  fromMs: number;
  toMs?: number;
  /** Requests slower than this count as slow (the stable p95 of the pre-period); null: none are slow. */
  slowThresholdMs?: number | null;
  /** Only events of this target (`provider:model`), e.g. the promoted model during a guardian check. */
  target?: string;
  /**
   * The slot's primary model on its own: an answer a fallback gave is an error of the primary, and its
   * quality score is not the primary's (a candidate must not get credit for another model's answers).
   */
  primaryOnly?: boolean;
}

/** ArmStats plus how many answers came from a fallback (errors of the primary under `primaryOnly`). */
export type ArmStatsWithFallbacks = ArmStats & { fallbacks: number };

const ARM_SQL = `
  SELECT count(*)::int                                            AS requests,
         count(*) FILTER (WHERE error_class IS NOT NULL
                             OR ($7::boolean AND error_class IS NULL AND fallback_depth > 0))::int AS errors,
         count(*) FILTER (WHERE error_class IS NULL AND fallback_depth > 0)::int AS fallbacks,
         count(*) FILTER (WHERE $5::float8 IS NOT NULL AND latency_ms > $5::float8)::int AS slow,
         count(quality_score) FILTER (WHERE NOT $7::boolean OR fallback_depth = 0)::int AS scored,
         avg(quality_score) FILTER (WHERE NOT $7::boolean OR fallback_depth = 0)::float8 AS quality_mean,
         var_samp(quality_score) FILTER (WHERE NOT $7::boolean OR fallback_depth = 0)::float8 AS quality_variance,
         coalesce(sum(cost_usd), 0)::float8                       AS cost_usd,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)::float8 AS p95_latency_ms
    FROM request_events
   WHERE route = $1 AND tag = $2
     AND created_at >= to_timestamp($3::float8 / 1000)
     AND created_at <  to_timestamp($4::float8 / 1000)
     AND ($6::text IS NULL OR target = $6::text)
     -- Client-caused failures (bad requests, content policy, hang-ups, impossible max_tokens) say nothing
     -- about the model: see providers/blame.ts, whose rule also keeps them from the circuit breaker.
     AND NOT ${CLIENT_CAUSED_SQL}`;

export async function armStats(pool: pg.Pool, q: ArmQuery): Promise<ArmStatsWithFallbacks> {
  const { rows } = await pool.query(ARM_SQL, [
    q.route,
    q.tag,
    q.fromMs,
    q.toMs ?? Date.now() + 60_000,
    q.slowThresholdMs ?? null,
    q.target ?? null,
    q.primaryOnly === true,
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
  };
}

export async function stableP95(
  pool: pg.Pool,
  route: string,
  fromMs: number,
  toMs: number,
): Promise<number | null> {
  const { rows } = await pool.query(
    `SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)::float8 AS p95, count(*)::int AS n
       FROM request_events
      WHERE route = $1 AND tag = 'stable' AND error_class IS NULL
        AND created_at >= to_timestamp($2::float8 / 1000) AND created_at < to_timestamp($3::float8 / 1000)`,
    [route, fromMs, toMs],
  );
  return rows[0].n >= 20 ? rows[0].p95 : null;
}
