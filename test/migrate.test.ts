import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/store/database';
import { migrate } from '../src/store/migrate';
import { createTestDatabase } from './helpers/db';

const TABLES = [
  'feedback',
  'request_events',
  'rollout_decisions',
  'routes',
  'routing_changes',
  'schema_migrations',
  'shadow_comparisons',
];

async function tables(db: Database): Promise<string[]> {
  const { rows } = await db.pool.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`,
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

  it('run on the embedded Postgres (PGlite) with the same pg code, and queries work', async () => {
    const db = await openDatabase({
      url: '',
      dataDir: path.join(os.tmpdir(), `mr-pglite-${crypto.randomUUID()}`),
    });
    opened.push(db);
    expect(db.embedded).toBe(true);
    const result = await migrate(db.pool);
    expect(result.applied).toContain('001_initial.sql');
    expect(await tables(db)).toEqual(TABLES);
    await db.pool.query(
      `INSERT INTO routes (name, blue) VALUES ('support-bot', '{"target":{"provider":"anthropic","model":"claude-sonnet-4"},"fallbacks":[]}')`,
    );
    const { rows } = await db.pool.query(`SELECT name, stable_slot, canary_bps, version FROM routes`);
    expect(rows).toEqual([{ name: 'support-bot', stable_slot: 'blue', canary_bps: 0, version: '1' }]);
  });
});
