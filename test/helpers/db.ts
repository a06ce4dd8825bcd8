import crypto from 'node:crypto';
import pg from 'pg';
import { openDatabase, type Database } from '../../src/store/database';
import { migrate } from '../../src/store/migrate';

/**
 * A freshly created, migrated database for one test file, on the real server named by `DATABASE_URL`
 * (a new database per call, so parallel test files never see each other's rows or notifications).
 * Without `DATABASE_URL` it falls back to an embedded PGlite in a temporary folder.
 */
export interface TestDatabase extends Database {
  name: string;
  /** The connection string of this database (for a second process, or a second pool). */
  connectionString: string;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const baseUrl = process.env.DATABASE_URL;
  if (!baseUrl) {
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = path.join(os.tmpdir(), `mr-pglite-${crypto.randomUUID()}`);
    const db = await openDatabase({ dataDir: dir, url: undefined });
    await migrate(db.pool);
    return { ...db, name: dir, connectionString: db.url };
  }
  const name = `mr_test_${crypto.randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  const connectionString = url.toString();
  const db = await openDatabase({ url: connectionString });
  await migrate(db.pool);
  return {
    ...db,
    name,
    connectionString,
    async close() {
      await db.close();
      const cleanup = new pg.Client({ connectionString: baseUrl });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await cleanup.end();
    },
  };
}
