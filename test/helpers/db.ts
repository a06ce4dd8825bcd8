import crypto from 'node:crypto';
import pg from 'pg';
import { openDatabase, type Database } from '../../src/store/database';
import { migrate } from '../../src/store/migrate';
import { ensureEmbeddedPostgres } from '../../src/store/embedded-postgres';

/**
 * A freshly created, migrated database for one test file (a new database per call, so parallel test files
 * never see each other's rows or notifications), on the server named by `DATABASE_URL`, or else on the
 * checkout's embedded PostgreSQL, which `test/global-setup.ts` started (or found) before the run.
 */
export interface TestDatabase extends Database {
  name: string;
  /** The connection string of this database (for a second process, or a second pool). */
  connectionString: string;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const empty = await createEmptyDatabase();
  const db = await openDatabase({ url: empty.connectionString });
  await migrate(db.pool);
  return {
    ...db,
    name: empty.name,
    connectionString: empty.connectionString,
    async close() {
      await db.close();
      await empty.drop();
    },
  };
}

/** A new database with nothing in it (no migrations), as a Postgres image creates one; `drop` removes it. */
export async function createEmptyDatabase(): Promise<{
  name: string;
  connectionString: string;
  drop(): Promise<void>;
}> {
  const baseUrl = process.env.DATABASE_URL ?? (await ensureEmbeddedPostgres()).connectionString;
  const name = `mr_test_${crypto.randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  await admin.end();
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    name,
    connectionString: url.toString(),
    async drop() {
      const cleanup = new pg.Client({ connectionString: baseUrl });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      await cleanup.end();
    },
  };
}
