import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';

const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

/** Daily event partitions created ahead of today at every migrate (and by the retention schedule). */
export const PARTITIONS_AHEAD_DAYS = 7;

export interface MigrationResult {
  applied: string[];
  alreadyApplied: string[];
}

/**
 * Applies the plain SQL files in `migrations/` in name order, each in its own transaction, and records
 * them in `schema_migrations`. An advisory lock keeps two processes starting at once from racing.
 */
export async function migrate(pool: pg.Pool, dir = MIGRATIONS_DIR): Promise<MigrationResult> {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort();
  const client = await pool.connect();
  try {
    // A migration may rewrite a large table: it is not held to the pool's statement timeout.
    await client.query('SET statement_timeout = 0');
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         name text PRIMARY KEY,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    await client.query('SELECT pg_advisory_lock(727274)');
    try {
      const { rows } = await client.query<{ name: string }>('SELECT name FROM schema_migrations');
      const done = new Set(rows.map((r) => r.name));
      const result: MigrationResult = { applied: [], alreadyApplied: [] };
      for (const file of files) {
        if (done.has(file)) {
          result.alreadyApplied.push(file);
          continue;
        }
        const sql = fs.readFileSync(path.join(dir, file), 'utf8');
        await client.query('BEGIN');
        try {
          await client.query(sql);
          await client.query('INSERT INTO schema_migrations (name) VALUES ($1)', [file]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw new Error(`migration ${file} failed: ${(err as Error).message}`);
        }
        result.applied.push(file);
      }
      // Every start makes sure today's and the coming days' event partitions exist (a process started after
      // days without a worker would otherwise find none); the worker's retention schedule does it hourly.
      const { rows: fn } = await client.query<{ ok: boolean }>(
        `SELECT to_regproc('event_partitions_ensure') IS NOT NULL AS ok`,
      );
      if (fn[0].ok)
        await client.query(
          `SELECT event_partitions_ensure('request_events', d, d + $1::int), event_partitions_ensure('shadow_comparisons', d, d + $1::int)
             FROM (SELECT (now() AT TIME ZONE 'UTC')::date AS d) t`,
          [PARTITIONS_AHEAD_DAYS],
        );
      return result;
    } finally {
      await client.query('SELECT pg_advisory_unlock(727274)');
    }
  } finally {
    await client.query('RESET statement_timeout').catch(() => {});
    client.release();
  }
}
