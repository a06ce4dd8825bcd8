import { afterAll, describe, expect, it } from 'vitest';
import { type Database } from '../src/store/database';
import { migrate } from '../src/store/migrate';
import { createTestDatabase } from './helpers/db';

const TABLES = [
  'feedback',
  'request_events',
  'request_rollups',
  'request_rollups_hourly',
  'rollout_decisions',
  'routes',
  'routing_changes',
  'schema_migrations',
  'shadow_comparisons',
];

async function tables(db: Database): Promise<string[]> {
  const { rows } = await db.pool.query<{ table_name: string }>(
    `SELECT relname AS table_name FROM pg_class
      WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') AND NOT relispartition
      ORDER BY relname`,
  );
  return rows.map((r) => r.table_name);
}

describe('migrations', () => {
  const opened: Database[] = [];
  afterAll(async () => {
    for (const db of opened) await db.close();
  });

  it('apply in order on the real Postgres, once', async () => {
    const db = await createTestDatabase();
    opened.push(db);
    expect(await tables(db)).toEqual(TABLES);
    const again = await migrate(db.pool);
    expect(again.applied).toEqual([]);
    expect(again.alreadyApplied).toContain('001_initial.sql');
  });

  it('008 keeps the newest feedback of a request given several times, then takes one per request', async () => {
    const db = await createTestDatabase();
    opened.push(db);
    // Back to the schema before 008, with feedback as it could pile up then (the newest row won).
    await db.pool.query(`
      DROP INDEX feedback_request_id_key;
      CREATE INDEX feedback_request_id_idx ON feedback (request_id);
      ALTER TABLE feedback DROP COLUMN caller, DROP COLUMN updated_at;
      ALTER TABLE request_events DROP COLUMN caller, DROP COLUMN client_request_id;
      DELETE FROM schema_migrations WHERE name = '008_request_caller_and_feedback.sql';
      INSERT INTO feedback (request_id, score) VALUES ('r-1', 1), ('r-2', 4), ('r-1', 5), ('r-1', 3);`);
    const result = await migrate(db.pool);
    expect(result.applied).toEqual(['008_request_caller_and_feedback.sql']);
    const { rows } = await db.pool.query('SELECT request_id, score FROM feedback ORDER BY request_id');
    expect(rows).toEqual([
      { request_id: 'r-1', score: 3 },
      { request_id: 'r-2', score: 4 },
    ]);
    await expect(db.pool.query(`INSERT INTO feedback (request_id, score) VALUES ('r-2', 2)`)).rejects.toThrow(
      /feedback_request_id_key/,
    );
  });
});
