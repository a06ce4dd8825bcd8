/**
 * Daily partitions of request_events and shadow_comparisons (see 006_partitioned_events.sql): created ahead,
 * listed with their size, and dropped whole once past the raw-event retention.
 *
 * A day is dropped with DETACH PARTITION ... CONCURRENTLY and then DROP TABLE: the detach takes only a
 * SHARE UPDATE EXCLUSIVE lock on the parent (writers and readers go on) and waits for the queries that may
 * still see the day; the drop then touches a table no query can reach. A detach interrupted half way (the
 * process died) leaves the day "detach pending"; the next pass finishes it with DETACH ... FINALIZE.
 */
import pg from 'pg';
import { ensureEventPartitions } from './event-writer';
import { ROLLUP_LEVELS } from './rollup-sql';

export const PARTITIONED_TABLES = ['request_events', 'shadow_comparisons'] as const;
export type PartitionedTable = (typeof PARTITIONED_TABLES)[number];

const DAY = 86_400_000;

export interface PartitionInfo {
  table: PartitionedTable;
  name: string;
  /** UTC day it holds, YYYY-MM-DD. */
  day: string;
  /** Epoch ms of the day's start. */
  fromMs: number;
  bytes: number;
  detachPending: boolean;
}

export async function listPartitions(pool: pg.Pool): Promise<PartitionInfo[]> {
  const { rows } = await pool.query<{
    parent: PartitionedTable;
    name: string;
    bytes: string;
    pending: boolean;
  }>(
    `SELECT p.relname AS parent, c.relname AS name, pg_total_relation_size(c.oid) AS bytes,
            i.inhdetachpending AS pending
       FROM pg_inherits i
       JOIN pg_class c ON c.oid = i.inhrelid
       JOIN pg_class p ON p.oid = i.inhparent
      WHERE p.relname = ANY($1) AND p.relnamespace = c.relnamespace
        AND p.relnamespace = to_regnamespace(current_schema())::oid
      ORDER BY c.relname`,
    [PARTITIONED_TABLES],
  );
  const out: PartitionInfo[] = [];
  for (const r of rows) {
    const m = /_p(\d{4})(\d{2})(\d{2})$/.exec(r.name);
    if (!m) continue; // not one of ours
    const day = `${m[1]}-${m[2]}-${m[3]}`;
    out.push({
      table: r.parent,
      name: r.name,
      day,
      fromMs: Date.parse(`${day}T00:00:00Z`),
      bytes: Number(r.bytes),
      detachPending: r.pending,
    });
  }
  return out;
}

/** Creates the partitions for today (UTC) and the next `daysAhead` days; returns how many were made. */
export function createPartitionsAhead(pool: pg.Pool, daysAhead: number, nowMs = Date.now()): Promise<number> {
  return ensureEventPartitions(pool, nowMs, nowMs + daysAhead * DAY);
}

/**
 * Drops the days that ended before `nowMs - retentionMs` (a day goes once all of it is past the retention).
 * Returns the names dropped. Needs a connection outside a transaction (DETACH CONCURRENTLY).
 */
export async function dropExpiredPartitions(
  pool: pg.Pool,
  retentionMs: number,
  nowMs = Date.now(),
): Promise<string[]> {
  if (!(retentionMs > 0)) throw new Error(`retention must be positive, got ${retentionMs} ms`);
  const cutoff = nowMs - retentionMs;
  const dropped: string[] = [];
  for (const p of await listPartitions(pool)) {
    if (p.fromMs + DAY > cutoff) continue;
    await detachAndDrop(pool, p);
    dropped.push(p.name);
  }
  return dropped;
}

/** Detaches one day without blocking writers or readers, then drops it. */
export async function detachAndDrop(pool: pg.Pool, p: PartitionInfo): Promise<void> {
  // Names come from the catalog (any partition attached to our tables whose name ends like a day): quoted,
  // so a name with capitals, quotes or a semicolon is that table and only that table.
  const parent = pg.escapeIdentifier(p.table);
  const name = pg.escapeIdentifier(p.name);
  const client = await pool.connect();
  try {
    // Waiting for older queries to finish is the point of CONCURRENTLY: no statement timeout here.
    await client.query('SET statement_timeout = 0');
    await client.query(
      p.detachPending
        ? `ALTER TABLE ${parent} DETACH PARTITION ${name} FINALIZE`
        : `ALTER TABLE ${parent} DETACH PARTITION ${name} CONCURRENTLY`,
    );
    await client.query(`DROP TABLE ${name}`);
  } finally {
    await client.query('RESET statement_timeout').catch(() => {});
    client.release();
  }
}

/** Deletes rollups (minutes and hours) older than the rollup retention (small tables: a few rows per route and minute). */
export async function deleteExpiredRollups(
  pool: pg.Pool,
  retentionMs: number,
  nowMs = Date.now(),
  chunk = 10_000,
): Promise<number> {
  if (!(retentionMs > 0)) throw new Error(`retention must be positive, got ${retentionMs} ms`);
  let total = 0;
  for (const level of ROLLUP_LEVELS) {
    const table = pg.escapeIdentifier(level.table);
    const column = pg.escapeIdentifier(level.column);
    for (;;) {
      const { rowCount } = await pool.query(
        `DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM ${table} WHERE ${column} < $1::timestamptz LIMIT $2)`,
        [new Date(nowMs - retentionMs).toISOString(), chunk],
      );
      total += rowCount ?? 0;
      if ((rowCount ?? 0) < chunk) break;
    }
  }
  return total;
}
