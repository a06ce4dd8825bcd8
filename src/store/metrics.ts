import type pg from 'pg';
import type { ArmStats, StepCounts } from '../policy';
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

/**
 * An error of the model; under "primary only" a fallback's answer is one too. Client-caused failures are not
 * counted at all (see NOT_CLIENT_CAUSED).
 */
const errorsWhere = (primaryOnly: string) => `error_class IS NOT NULL
                             OR (${primaryOnly}::boolean AND error_class IS NULL AND fallback_depth > 0)`;
// Client-caused failures (bad requests, content policy, hang-ups, impossible max_tokens) say nothing about the
// model: see providers/blame.ts, whose rule also keeps them from the circuit breaker.
const NOT_CLIENT_CAUSED = `AND NOT ${CLIENT_CAUSED_SQL}`;
const slowWhere = (threshold: string) =>
  `${threshold}::float8 IS NOT NULL AND latency_ms > ${threshold}::float8`;

// $1 route, $2 tag, $5 slow threshold, $6 target, $7 primary only; the window's bounds are $3 and $4.
const ARM_COLUMNS = `
  SELECT count(*)::int                                            AS requests,
         count(*) FILTER (WHERE ${errorsWhere('$7')})::int AS errors,
         count(*) FILTER (WHERE error_class IS NULL AND fallback_depth > 0)::int AS fallbacks,
         count(*) FILTER (WHERE ${slowWhere('$5')})::int AS slow,
         count(quality_score) FILTER (WHERE NOT $7::boolean OR fallback_depth = 0)::int AS scored,
         avg(quality_score) FILTER (WHERE NOT $7::boolean OR fallback_depth = 0)::float8 AS quality_mean,
         var_samp(quality_score) FILTER (WHERE NOT $7::boolean OR fallback_depth = 0)::float8 AS quality_variance,
         coalesce(sum(cost_usd), 0)::float8                       AS cost_usd,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)::float8 AS p95_latency_ms
    FROM request_events`;

const ARM_SQL = `${ARM_COLUMNS}
   WHERE route = $1 AND tag = $2
     AND created_at >= to_timestamp($3::float8 / 1000)
     AND created_at <  to_timestamp($4::float8 / 1000)
     AND ($6::text IS NULL OR target = $6::text)
     ${NOT_CLIENT_CAUSED}`;

/**
 * How far a router's clock may be behind the control plane's before its events fall out of a window cut
 * by routing version. The bound only lets the (route, tag, created_at) index narrow the scan; which events
 * belong to a step is decided by their routing version alone.
 */
export const VERSION_WINDOW_CLOCK_MARGIN_MS = 24 * 3_600_000;

const ARM_BY_VERSION_SQL = `${ARM_COLUMNS}
   WHERE route = $1 AND tag = $2
     AND routing_version >= $3::bigint
     AND created_at >= to_timestamp($4::float8 / 1000)
     AND ($6::text IS NULL OR target = $6::text)
     ${NOT_CLIENT_CAUSED}`;

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
  return armOf(rows[0]);
}

/**
 * A window cut by routing version rather than by time: the events served under `fromVersion` or any later
 * routing state, whatever the serving router's clock said (`fromMs` is the control plane's time of that
 * routing change, and only narrows the scan, by VERSION_WINDOW_CLOCK_MARGIN_MS).
 */
export async function armStatsSinceVersion(
  pool: pg.Pool,
  q: Omit<ArmQuery, 'toMs'> & { fromVersion: number },
): Promise<ArmStatsWithFallbacks> {
  const { rows } = await pool.query(ARM_BY_VERSION_SQL, [
    q.route,
    q.tag,
    q.fromVersion,
    q.fromMs - VERSION_WINDOW_CLOCK_MARGIN_MS,
    q.slowThresholdMs ?? null,
    q.target ?? null,
    q.primaryOnly === true,
  ]);
  return armOf(rows[0]);
}

/**
 * Requests and bad events of both arms per canary step, a step being the events served under the routing
 * versions from `stepVersions[i]` up to (not including) `stepVersions[i + 1]` (ascending; the last step is
 * open). Counted as armStats counts them.
 */
export async function stepCounts(
  pool: pg.Pool,
  q: {
    route: string;
    stepVersions: readonly number[];
    fromMs: number;
    slowThresholdMs?: number | null;
    primaryOnly?: boolean;
  },
): Promise<StepCounts[]> {
  const steps: StepCounts[] = q.stepVersions.map(() => ({
    stable: { requests: 0, errors: 0, slow: 0 },
    canary: { requests: 0, errors: 0, slow: 0 },
  }));
  if (steps.length === 0) return steps;
  const { rows } = await pool.query(
    // width_bucket over the ascending lower bounds: 1 for the first step, n for the last (open) one.
    `SELECT width_bucket(routing_version, $2::bigint[]) AS step, tag,
            count(*)::int AS requests,
            count(*) FILTER (WHERE ${errorsWhere('$5')})::int AS errors,
            count(*) FILTER (WHERE ${slowWhere('$4')})::int AS slow
       FROM request_events
      WHERE route = $1 AND tag IN ('stable', 'canary')
        AND routing_version >= ($2::bigint[])[1]
        AND created_at >= to_timestamp($3::float8 / 1000)
        ${NOT_CLIENT_CAUSED}
      GROUP BY 1, 2`,
    [
      q.route,
      q.stepVersions,
      q.fromMs - VERSION_WINDOW_CLOCK_MARGIN_MS,
      q.slowThresholdMs ?? null,
      q.primaryOnly === true,
    ],
  );
  for (const r of rows) {
    const step = steps[Number(r.step) - 1];
    if (!step) continue;
    step[r.tag as 'stable' | 'canary'] = { requests: r.requests, errors: r.errors, slow: r.slow };
  }
  return steps;
}

function armOf(r: Record<string, number | null>): ArmStatsWithFallbacks {
  return {
    requests: r.requests as number,
    errors: r.errors as number,
    slow: r.slow as number,
    scored: r.scored as number,
    qualityMean: r.quality_mean,
    qualityVariance: r.quality_variance,
    costUsd: r.cost_usd as number,
    p95LatencyMs: r.p95_latency_ms,
    fallbacks: r.fallbacks as number,
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
