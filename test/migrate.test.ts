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
});
