import type pg from 'pg';
import { listPartitions } from './partitions';

export interface EventDayStats {
  /** UTC day, YYYY-MM-DD. */
  day: string;
  route: string;
  /** Requests recorded (from the rollups: every request, sampled out of the raw table or not). */
  requests: number;
  /** Raw rows stored, estimated: the day partition's row estimate shared by the routes' requests. */
  rows: number;
  /** Bytes of the day's partition (table, indexes, TOAST), shared the same way. */
  bytes: number;
  partition: string;
}

/**
 * Rows, bytes and partitions per route and day, cheaply: requests come from the rollups, the partition's
 * size and row estimate (pg_class.reltuples, kept by autovacuum/ANALYZE) from the catalog; no raw scan.
 */
export async function eventStats(
  pool: pg.Pool,
  opts: { route?: string; days?: number } = {},
): Promise<EventDayStats[]> {
  const days = opts.days ?? 30;
  const parts = (await listPartitions(pool)).filter((p) => p.table === 'request_events');
  const { rows: est } = await pool.query<{ name: string; tuples: number }>(
    `SELECT relname AS name, greatest(reltuples, 0)::float8 AS tuples FROM pg_class WHERE relname = ANY($1)`,
    [parts.map((p) => p.name)],
  );
  const tuples = new Map(est.map((r) => [r.name, Number(r.tuples)]));
  const { rows } = await pool.query<{ day: string; route: string; requests: string }>(
    `SELECT to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, route, sum(requests) AS requests
       FROM request_rollups_hourly
      WHERE hour >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - make_interval(days => $1)
      GROUP BY 1, 2 ORDER BY 1, 2`,
    [days],
  );
  const dayTotal = new Map<string, number>();
  for (const r of rows) dayTotal.set(r.day, (dayTotal.get(r.day) ?? 0) + Number(r.requests));
  const byDay = new Map(parts.map((p) => [p.day, p]));
  const out: EventDayStats[] = [];
  for (const r of rows) {
    if (opts.route && r.route !== opts.route) continue;
    const p = byDay.get(r.day);
    const share = Number(r.requests) / (dayTotal.get(r.day) || 1);
    out.push({
      day: r.day,
      route: r.route,
      requests: Number(r.requests),
      rows: p ? Math.round((tuples.get(p.name) ?? 0) * share) : 0,
      bytes: p ? Math.round(p.bytes * share) : 0,
      partition: p ? p.name : '(dropped)',
    });
  }
  return out;
}
