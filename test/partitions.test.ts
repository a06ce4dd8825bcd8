/**
 * Partition DDL takes its table names from the catalog: any table attached to request_events whose name ends
 * like a day (`_pYYYYMMDD`) is one the retention pass detaches and drops. Such a name can hold capitals,
 * quotes, spaces or a semicolon; it must name that table and only that one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { dropExpiredPartitions, listPartitions } from '../src/store/partitions';
import { createTestDatabase, type TestDatabase } from './helpers/db';

const DAY = 86_400_000;
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.close();
});

describe('partition DDL', () => {
  it('detaches and drops a partition with a hostile name, and nothing else', async () => {
    const hostile = 'Evil"; DROP TABLE routes; --_p20000101';
    // A lower-case twin that an unquoted, case-folded name would reach instead.
    const twin = 'evil_p20000102';
    const q = pg.escapeIdentifier;
    await db.pool.query(
      `CREATE TABLE ${q(hostile)} (LIKE request_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`,
    );
    await db.pool.query(
      `ALTER TABLE request_events ATTACH PARTITION ${q(hostile)}
         FOR VALUES FROM ('2000-01-01 00:00:00+00') TO ('2000-01-02 00:00:00+00')`,
    );
    await db.pool.query(`CREATE TABLE ${q(twin)} (x int)`);
    await db.pool.query(`CREATE TABLE ${q('Evil')} (x int)`);
    await db.pool.query(`INSERT INTO ${q('Evil')} VALUES (1)`);

    const listed = await listPartitions(db.pool);
    expect(listed.find((p) => p.name === hostile)).toMatchObject({
      table: 'request_events',
      day: '2000-01-01',
    });

    const dropped = await dropExpiredPartitions(db.pool, 30 * DAY, Date.parse('2000-03-01T00:00:00Z'));
    expect(dropped).toEqual([hostile]);
    const { rows } = await db.pool.query<{ name: string }>(
      `SELECT relname AS name FROM pg_class WHERE relname = ANY($1) AND relkind IN ('r', 'p')`,
      [[hostile, twin, 'Evil', 'routes', 'request_events']],
    );
    expect(rows.map((r) => r.name).sort()).toEqual(['Evil', 'evil_p20000102', 'request_events', 'routes']);
    expect((await db.pool.query(`SELECT x FROM ${q('Evil')}`)).rows).toEqual([{ x: 1 }]);
    expect((await listPartitions(db.pool)).some((p) => p.name === hostile)).toBe(false);
  });
});
