import type pg from 'pg';
import type { ArmStats, StepCounts } from '../decision/policy';
import { CLIENT_CAUSED_SQL, REFUSAL_KIND_SQL, REFUSAL_SQL } from '../data-plane/providers/blame';
import {
  addSparse,
  countAbove,
  emptyHistogram,
  histogramQuantile,
  LATENCY_BUCKETS,
} from './latency-histogram';

/**
 * Windowed statistics of request events, per tag, so that only a few numbers travel to the workflow (and
 * into its history). Times are epoch milliseconds chosen by the workflow.
 *
 * They are read from the per-minute rollups (`request_rollups`, maintained by the event writer in the same
 * statement that inserts the events, and by the scorer as it scores) for every whole minute of the window,
 * plus the raw events of the window's partial first and last minutes. The cost is then set by the window's
 * length in minutes, not by the route's traffic. `armStatsRaw`/`stableP95Raw` (arm-statistics-raw.ts) compute the same numbers from
 * the raw events alone (the reference the rollups are tested against, and the benchmark's "before").
 *
 * What differs between the two: the p95 is read from the rollups' latency histogram, as the upper edge of its
 * bucket (at most 7.2% above the exact value; see latency-histogram.ts); slow requests are counted from the
 * histogram, above the slow threshold rounded up to a bucket edge (exact for a threshold that is a p95 read
 * from a histogram, as the baseline is). Counts, errors, fallbacks, scores and cost are equal.
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
  /** Only events recorded under this routing version (the rollups are keyed by it). */
  routingVersion?: number;
  /**
   * Only events served under routing versions in [fromVersion, toVersion): a window cut by routing version
   * rather than by time, whatever the serving router's clock said (a canary step).
   */
  fromVersion?: number;
  toVersion?: number;
  /**
   * The slot's primary model on its own: an answer a fallback gave is an error of the primary, and its
   * quality score is not the primary's (a candidate must not get credit for another model's answers).
   */
  primaryOnly?: boolean;
}

/** ArmStats plus how many answers came from a fallback (errors of the primary under `primaryOnly`). */
export type ArmStatsWithFallbacks = ArmStats & { fallbacks: number };

/**
 * Hang-ups and impossible max_tokens say nothing about either arm: they are left out of every statistic, as
 * requests too (see providers/blame.ts). Refusals (400s, content policy, unsupported parameters, requests
 * that cannot be translated) are counted per arm as `refusals`, beside the requests: they are neither
 * requests, errors nor latency samples, and the policy compares the arms' refusal rates. In the rollups a
 * success has the error class '', which both rules pass.
 */
const NOT_CLIENT_CAUSED = `NOT ${CLIENT_CAUSED_SQL}`;
const REFUSED = REFUSAL_SQL;

/**
 * Routing versions in [$from, $to) when given (rollups store a missing version as 0). Also used by
 * arm-statistics-raw.ts (with `iso` and `countKinds`), which this module does not import back: no circle.
 */
export function versionRange(column: string, from: string, to: string): string {
  return `(${from}::bigint IS NULL OR ${column} >= ${from}::bigint) AND (${to}::bigint IS NULL OR ${column} < ${to}::bigint)`;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Refusals per kind from [kind, count] pairs, rounded (weighted raw rows) and without empty kinds. */
export function countKinds(pairs: Iterable<[string, number]>, into: Record<string, number> = {}) {
  for (const [k, n] of pairs) into[k] = (into[k] ?? 0) + Number(n);
  for (const k of Object.keys(into)) {
    into[k] = Math.round(into[k]);
    if (into[k] <= 0) delete into[k];
  }
  return into;
}

// ---- rollups plus the partial minutes ------------------------------------------------------------------

/** The latency histogram of the served requests (refusals are no latency sample). */
const HIST_SUM = `ARRAY[${Array.from({ length: LATENCY_BUCKETS }, (_, i) => `coalesce(sum(latency_hist[${i}]) FILTER (WHERE NOT refused), 0)`).join(', ')}]::float8[]`;

/**
 * Sums over the rollups: minutes [$3, $11), hours [$11, $12) from the hourly table, minutes [$12, $4); and
 * over the raw events of [$14, $15) (a partial first minute) and [$9, $10) (a past window's partial last
 * minute), empty ranges where there is none. Plain
 * ranges joined by UNION ALL, not ORs of ranges: the planner estimates those well (an OR of ranges it took
 * for thousands of rows, and went parallel for 17).
 */
export const ROLLUP_ARM_SQL = `
WITH rr AS (
  ${[
    ['request_rollups', 'minute', '$3', '$11'],
    ['request_rollups_hourly', 'hour', '$11', '$12'],
    ['request_rollups', 'minute', '$12', '$4'],
  ]
    .map(
      ([
        table,
        column,
        from,
        to,
      ]) => `SELECT requests, error_class, fallback, scored, score_sum, score_sq_sum, cost_usd, latency_hist,
         attempts, attempt_errors, ${REFUSED} AS refused
    FROM ${table}
   WHERE route = $1 AND tag = $2 AND ${column} >= ${from}::timestamptz AND ${column} < ${to}::timestamptz
     AND ($6::text IS NULL OR target = $6::text)
     AND ($5::bigint IS NULL OR routing_version = $5::bigint)
     AND ${versionRange('routing_version', '$8', '$16')}
     AND ${NOT_CLIENT_CAUSED}
     AND (NOT $13::boolean OR error_class = '')`,
    )
    .join('\n  UNION ALL\n  ')}
), r AS (
  SELECT coalesce(sum(requests) FILTER (WHERE NOT refused), 0)::float8 AS requests,
         coalesce(sum(requests) FILTER (WHERE NOT refused AND (error_class <> ''
                                           OR ($7::boolean AND error_class = '' AND fallback))), 0)::float8 AS errors,
         coalesce(sum(requests) FILTER (WHERE error_class = '' AND fallback), 0)::float8 AS fallbacks,
         coalesce(sum(scored) FILTER (WHERE NOT $7::boolean OR NOT fallback), 0)::float8 AS scored,
         coalesce(sum(score_sum) FILTER (WHERE NOT $7::boolean OR NOT fallback), 0)::float8 AS score_sum,
         coalesce(sum(score_sq_sum) FILTER (WHERE NOT $7::boolean OR NOT fallback), 0)::float8 AS score_sq,
         coalesce(sum(cost_usd), 0)::float8 AS cost_usd,
         coalesce(sum(requests) FILTER (WHERE refused), 0)::float8 AS refusals,
         coalesce(sum(attempts) FILTER (WHERE NOT refused), 0)::float8 AS attempts,
         coalesce(sum(attempt_errors) FILTER (WHERE NOT refused), 0)::float8 AS attempt_errors,
         ${HIST_SUM} AS hist
    FROM rr
), rk AS (
  SELECT coalesce(json_agg(json_build_array(k, n)), '[]') AS kinds
    FROM (SELECT ${REFUSAL_KIND_SQL} AS k, sum(requests)::float8 AS n FROM rr WHERE refused GROUP BY 1) x
), e AS MATERIALIZED (
  ${[
    ['$14', '$15'],
    ['$9', '$10'],
  ]
    .map(
      ([
        from,
        to,
      ]) => `SELECT latency_ms, error_class, fallback_depth, quality_score, cost_usd, sample_weight::float8 AS w,
         attempts, attempt_errors, ${REFUSED} AS refused
    FROM request_events
   WHERE route = $1 AND tag = $2 AND created_at >= ${from}::timestamptz AND created_at < ${to}::timestamptz
     AND ($6::text IS NULL OR target = $6::text)
     AND ($5::bigint IS NULL OR coalesce(routing_version, 0) = $5::bigint)
     AND ${versionRange('coalesce(routing_version, 0)', '$8', '$16')}
     AND ${NOT_CLIENT_CAUSED}
     AND (NOT $13::boolean OR error_class IS NULL)`,
    )
    .join('\n  UNION ALL\n  ')}
), ea AS (
  SELECT coalesce(sum(w) FILTER (WHERE NOT refused), 0)::float8 AS requests,
         coalesce(sum(w) FILTER (WHERE NOT refused AND (error_class IS NOT NULL
                                    OR ($7::boolean AND error_class IS NULL AND fallback_depth > 0))), 0)::float8 AS errors,
         coalesce(sum(w) FILTER (WHERE error_class IS NULL AND fallback_depth > 0), 0)::float8 AS fallbacks,
         count(quality_score) FILTER (WHERE NOT $7::boolean OR fallback_depth = 0)::float8 AS scored,
         coalesce(sum(quality_score) FILTER (WHERE NOT $7::boolean OR fallback_depth = 0), 0)::float8 AS score_sum,
         coalesce(sum(quality_score * quality_score) FILTER (WHERE NOT $7::boolean OR fallback_depth = 0), 0)::float8 AS score_sq,
         coalesce(sum(cost_usd * w), 0)::float8 AS cost_usd,
         coalesce(sum(w) FILTER (WHERE refused), 0)::float8 AS refusals,
         coalesce(sum(attempts * w) FILTER (WHERE NOT refused), 0)::float8 AS attempts,
         coalesce(sum(attempt_errors * w) FILTER (WHERE NOT refused), 0)::float8 AS attempt_errors
    FROM e
), eh AS (
  SELECT coalesce(json_agg(json_build_array(b, n)), '[]') AS hist
    FROM (SELECT rollup_bucket(latency_ms) AS b, sum(w)::float8 AS n FROM e WHERE NOT refused GROUP BY 1) x
), ek AS (
  SELECT coalesce(json_agg(json_build_array(k, n)), '[]') AS kinds
    FROM (SELECT ${REFUSAL_KIND_SQL} AS k, sum(w)::float8 AS n FROM e WHERE refused GROUP BY 1) x
)
SELECT row_to_json(r) AS r, row_to_json(ea) AS e, eh.hist AS eh, rk.kinds AS rk, ek.kinds AS ek
  FROM r, ea, eh, rk, ek`;

interface Sums {
  requests: number;
  errors: number;
  fallbacks: number;
  scored: number;
  score_sum: number;
  score_sq: number;
  cost_usd: number;
  refusals: number;
  attempts: number;
  attempt_errors: number;
}

const SUM_KEYS = [
  'requests',
  'errors',
  'fallbacks',
  'scored',
  'score_sum',
  'score_sq',
  'cost_usd',
  'refusals',
  'attempts',
  'attempt_errors',
] as const;

/**
 * How a window [from, to) is read: its whole hours from the hourly rollups, the whole minutes around them
 * from the minute rollups, and its partial first minute from the raw events (at most a minute of one arm:
 * a window that starts mid-minute, as a step or a guardian does, sees its first seconds). A window that ends
 * now or later takes its current minute whole from the rollups (no event is newer than now); one that ended
 * in the past reads its partial last minute from the raw events. A window inside one minute is read raw.
 */
export function splitWindow(fromMs: number, toMs: number, nowMs = Date.now()) {
  const start = Math.ceil(fromMs / MINUTE) * MINUTE;
  const live = toMs >= nowMs;
  const end = live ? Math.ceil(toMs / MINUTE) * MINUTE : Math.floor(toMs / MINUTE) * MINUTE;
  if (start >= end)
    return { head: [fromMs, Math.max(fromMs, toMs)], full: [end, end], hours: [end, end], tail: [end, end] };
  const hFrom = Math.ceil(start / HOUR) * HOUR;
  const hTo = Math.floor(end / HOUR) * HOUR;
  const hours = hFrom < hTo ? [hFrom, hTo] : [end, end];
  return { head: [fromMs, start], full: [start, end], hours, tail: live ? [end, end] : [end, toMs] };
}

/** Mean and sample variance from a count, a sum and a sum of squares (scores are 1-5: no cancellation). */
function meanVariance(n: number, sum: number, sq: number): { mean: number | null; variance: number | null } {
  if (n <= 0) return { mean: null, variance: null };
  const mean = sum / n;
  if (n < 2) return { mean, variance: null };
  return { mean, variance: Math.max(0, (sq - n * mean * mean) / (n - 1)) };
}

/** `successOnly`: only calls that succeeded (the baseline latency). */
async function rollupArm(
  pool: pg.Pool,
  q: ArmQuery,
  successOnly = false,
): Promise<{ sums: Sums; hist: number[]; kinds: Record<string, number> }> {
  const w = splitWindow(q.fromMs, q.toMs ?? Date.now() + MINUTE);
  const { rows } = await pool.query(ROLLUP_ARM_SQL, [
    q.route,
    q.tag,
    iso(w.full[0]),
    iso(w.full[1]),
    q.routingVersion ?? null,
    q.target ?? null,
    q.primaryOnly === true,
    q.fromVersion ?? null,
    iso(w.tail[0]),
    iso(w.tail[1]),
    iso(w.hours[0]),
    iso(w.hours[1]),
    successOnly,
    iso(w.head[0]),
    iso(w.head[1]),
    q.toVersion ?? null,
  ]);
  const r = rows[0].r as Sums & { hist: number[] };
  const e = rows[0].e as Sums;
  const hist = emptyHistogram();
  addSparse(hist, 0, r.hist);
  for (const [b, n] of rows[0].eh as [number, number][]) addSparse(hist, b, [n]);
  const sums = {} as Sums;
  for (const k of SUM_KEYS) sums[k] = Number(r[k]) + Number(e[k]);
  const kinds = countKinds([...(rows[0].rk as [string, number][]), ...(rows[0].ek as [string, number][])]);
  return { sums, hist, kinds };
}

/** The arm's statistics from the rollups (whole minutes) and raw events (partial minutes). */
export async function armStats(pool: pg.Pool, q: ArmQuery): Promise<ArmStatsWithFallbacks> {
  const { sums, hist, kinds } = await rollupArm(pool, q);
  const { mean, variance } = meanVariance(sums.scored, sums.score_sum, sums.score_sq);
  // Sampled stable events in the partial minutes carry weights: counts are rounded back to whole requests.
  return {
    requests: Math.round(sums.requests),
    errors: Math.round(sums.errors),
    slow: Math.round(countAbove(hist, q.slowThresholdMs)),
    scored: Math.round(sums.scored),
    qualityMean: mean,
    qualityVariance: variance,
    costUsd: sums.cost_usd,
    p95LatencyMs: histogramQuantile(hist, 0.95),
    fallbacks: Math.round(sums.fallbacks),
    refusals: Math.round(sums.refusals),
    refusalKinds: kinds,
    attempts: Math.round(sums.attempts),
    attemptErrors: Math.round(sums.attempt_errors),
  };
}

/**
 * How far a router's clock may be behind the control plane's before its events fall out of a window cut
 * by routing version. The bound only narrows the read (whole hours of rollups); which events belong to a
 * step is decided by their routing version alone.
 */
export const VERSION_WINDOW_CLOCK_MARGIN_MS = 24 * HOUR;

/** The time bounds of a window cut by version: its routers' clocks may be behind or ahead of ours. */
const versionWindow = (fromMs: number) => ({
  fromMs: fromMs - VERSION_WINDOW_CLOCK_MARGIN_MS,
  toMs: Date.now() + VERSION_WINDOW_CLOCK_MARGIN_MS,
});

/**
 * A window cut by routing version rather than by time: the events served under `fromVersion` or any later
 * routing state, whatever the serving router's clock said (`fromMs` is the control plane's time of that
 * routing change, and only narrows the read, by VERSION_WINDOW_CLOCK_MARGIN_MS).
 */
export async function armStatsSinceVersion(
  pool: pg.Pool,
  q: Omit<ArmQuery, 'toMs' | 'toVersion'> & { fromVersion: number },
): Promise<ArmStatsWithFallbacks> {
  return armStats(pool, { ...q, ...versionWindow(q.fromMs) });
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
  const counts = (tag: Tag, i: number) =>
    armStats(pool, {
      route: q.route,
      tag,
      ...versionWindow(q.fromMs),
      fromVersion: q.stepVersions[i],
      toVersion: q.stepVersions[i + 1],
      slowThresholdMs: q.slowThresholdMs,
      primaryOnly: q.primaryOnly,
    }).then(({ requests, errors, slow, refusals, attempts, attemptErrors }) => ({
      requests,
      errors,
      slow,
      refusals,
      attempts,
      attemptErrors,
    }));
  return Promise.all(
    q.stepVersions.map(async (_, i) => {
      const [stable, canary] = await Promise.all([counts('stable', i), counts('canary', i)]);
      return { stable, canary };
    }),
  );
}

/**
 * The stable arm's p95 latency of successful calls over [from, to), from the rollups' histogram (the upper
 * edge of its bucket); null with fewer than 20 calls.
 */
export async function stableP95(
  pool: pg.Pool,
  route: string,
  fromMs: number,
  toMs: number,
): Promise<number | null> {
  const { sums, hist } = await rollupArm(pool, { route, tag: 'stable', fromMs, toMs }, true);
  return Math.round(sums.requests) >= 20 ? histogramQuantile(hist, 0.95) : null;
}

// The same statistics from the raw events alone (the reference the rollups are tested against).
