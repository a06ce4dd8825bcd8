import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import v8 from 'node:v8';
import vm from 'node:vm';
import pg from 'pg';
import {
  createEventWriter,
  deleteCapturedContentOlderThan,
  type RequestEvent,
} from '../src/store/event-writer';
import { freePort } from '../src/store/database';
import { createTestDatabase, type TestDatabase } from './helpers/db';

const unhandled: unknown[] = [];
const onUnhandled = (err: unknown) => unhandled.push(err);

let db: TestDatabase;
beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.close();
  process.off('unhandledRejection', onUnhandled);
});

function event(i: number, over: Partial<RequestEvent> = {}): RequestEvent {
  return {
    requestId: `req-${i}`,
    route: 'support-bot',
    tag: i % 10 === 0 ? 'canary' : 'stable',
    slot: i % 10 === 0 ? 'green' : 'blue',
    target: i % 10 === 0 ? 'openai:gpt-4o' : 'anthropic:claude-sonnet-4',
    fallbackDepth: 0,
    latencyMs: 100 + (i % 50),
    errorClass: i % 25 === 0 ? 'timeout' : null,
    inputTokens: 120,
    outputTokens: 80,
    costUsd: 0.0012,
    routingVersion: 3,
    ...over,
  };
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await db.pool.query(sql, params);
  return Number(rows[0].n);
}

/** A real garbage collection, so that heap numbers mean retained memory. */
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

async function deadPool(): Promise<pg.Pool> {
  const pool = new pg.Pool({
    connectionString: `postgres://postgres@127.0.0.1:${await freePort()}/none`,
    max: 2,
  });
  pool.on('error', () => {});
  return pool;
}

describe('event writer', () => {
  it('writes batches with one multi-row insert per batch, fields mapped to columns', async () => {
    let queries = 0;
    const pool = new pg.Pool({ connectionString: db.connectionString, max: 2 });
    pool.on('error', () => {});
    const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
    (pool as unknown as { query: unknown }).query = (...args: unknown[]) => {
      queries++;
      return query(...args);
    };
    const writer = createEventWriter({ pool, batchSize: 500, flushIntervalMs: 20 });
    const createdAt = new Date('2030-01-02T03:04:05.678Z');
    expect(
      writer.record(
        event(-1, {
          requestId: 'mapped',
          tag: 'canary',
          target: 'openai:gpt-4o',
          slot: 'green',
          fallbackDepth: 2,
          latencyMs: 812.5,
          errorClass: 'rate_limited',
          inputTokens: 11,
          outputTokens: 22,
          costUsd: 0.5,
          routingVersion: 42,
          referenceId: 'q-7',
          prompt: [{ role: 'user', content: 'say "hi" \\ {x}' }],
          answer: 'hi, "there"\nnew line',
          createdAt,
        }),
      ),
    ).toBe(true);
    for (let i = 0; i < 1999; i++) expect(writer.record(event(i))).toBe(true);
    await writer.flush();
    expect(writer.stats()).toMatchObject({
      written: 2000,
      dropped: 0,
      buffered: 0,
      failedBatches: 0,
      lastError: null,
    });
    // 2000 events / 500 per batch (+1 partial at most), and 2 for the event dated 2030: its batch is refused
    // for want of a partition, the writer creates that day, and the batch is retried.
    expect(queries).toBeLessThanOrEqual(7);
    expect(
      await count(
        `SELECT count(*) AS n FROM request_events WHERE request_id LIKE 'req-%' OR request_id = 'mapped'`,
      ),
    ).toBe(2000);
    const { rows } = await db.pool.query(`SELECT * FROM request_events WHERE request_id = 'mapped'`);
    expect(rows[0]).toMatchObject({
      route: 'support-bot',
      tag: 'canary',
      slot: 'green',
      target: 'openai:gpt-4o',
      fallback_depth: 2,
      latency_ms: 812.5,
      error_class: 'rate_limited',
      input_tokens: 11,
      output_tokens: 22,
      cost_usd: 0.5,
      routing_version: '42',
      reference_id: 'q-7',
      prompt: [{ role: 'user', content: 'say "hi" \\ {x}' }],
      answer: 'hi, "there"\nnew line',
      quality_score: null,
    });
    expect((rows[0].created_at as Date).toISOString()).toBe(createdAt.toISOString());
    await writer.close();
    await pool.end();
  });

  it('writes a partial batch after flushIntervalMs without an explicit flush', async () => {
    const writer = createEventWriter({ pool: db.pool, flushIntervalMs: 30 });
    writer.record(event(1, { requestId: 'timer-1' }));
    writer.record(event(2, { requestId: 'timer-2' }));
    const t0 = Date.now();
    while ((await count(`SELECT count(*) AS n FROM request_events WHERE request_id LIKE 'timer-%'`)) < 2) {
      expect(Date.now() - t0).toBeLessThan(2000);
      await new Promise((r) => setTimeout(r, 10));
    }
    await writer.close();
  });

  // What record() costs the caller is measured in bench/hot-path.ts; here, that it only queues.
  it("record() writes nothing on the caller's stack; close() writes everything it queued", async () => {
    const writer = createEventWriter({
      pool: db.pool,
      maxBuffer: 200_000,
      maxBufferBytes: 256 * 1024 * 1024,
      batchSize: 1000,
    });
    for (let i = 0; i < 100_000; i++) writer.record(event(i, { route: 'cheap' }));
    expect(writer.stats().written).toBe(0);
    await writer.close();
    expect(writer.stats().written).toBe(100_000);
  });

  it('a full buffer drops and counts, and does not grow', async () => {
    const pool = await deadPool();
    const writer = createEventWriter({
      pool,
      maxBuffer: 1000,
      batchSize: 100,
      maxAttempts: 1000,
      retryBaseMs: 50,
      retryMaxMs: 50,
      closeTimeoutMs: 200,
    });
    let accepted = 0;
    for (let i = 0; i < 5000; i++) if (writer.record(event(i))) accepted++;
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 5000; i++) if (writer.record(event(i))) accepted++;
    const st = writer.stats();
    expect(accepted).toBe(1000);
    expect(st.buffered).toBe(1000);
    expect(st.dropped).toBe(9000);
    expect(st.written).toBe(0);
    await writer.close();
    await pool.end();
  });

  it('the buffer is bounded in bytes too: large captured answers are dropped and counted once it is full', async () => {
    const pool = await deadPool();
    const writer = createEventWriter({
      pool,
      maxBuffer: 10_000,
      maxBufferBytes: 1024 * 1024,
      batchSize: 100,
      maxAttempts: 1000,
      retryBaseMs: 50,
      retryMaxMs: 50,
      closeTimeoutMs: 200,
    });
    const heap0 = heapAfterGc();
    const answer = 'A long captured answer about tide tables. '.repeat(2500); // ~100 KB each
    const prompt = [{ role: 'user', content: 'Summarise the harbour log. '.repeat(800) }]; // ~21 KB
    let accepted = 0;
    for (let i = 0; i < 200; i++)
      if (writer.record(event(i, { answer: `${answer}${i}`, prompt }))) accepted++;
    const st = writer.stats();
    // ~121 KB per event into 1 MiB: 8 fit, far fewer than the 10 000 the count bound alone allows.
    expect(accepted).toBe(8);
    expect(st.buffered).toBe(8);
    expect(st.bufferedBytes).toBeGreaterThan(900 * 1024);
    expect(st.bufferedBytes).toBeLessThanOrEqual(1024 * 1024);
    expect(st.dropped).toBe(192);
    expect(st.droppedBufferFull).toBe(192);
    expect(heapAfterGc() - heap0).toBeLessThan(8 * 1024 * 1024);
    // Small events still fit beside them until the bytes run out.
    expect(writer.record(event(999))).toBe(true);
    await writer.close();
    expect(writer.stats().bufferedBytes).toBe(0);
    await pool.end();
  });

  it('a dead Postgres: batches retried then dropped with counters, no crash, memory bounded', async () => {
    const pool = await deadPool();
    const writer = createEventWriter({
      pool,
      maxBuffer: 10_000,
      batchSize: 500,
      maxAttempts: 3,
      retryBaseMs: 5,
      retryMaxMs: 20,
    });
    const heap0 = heapAfterGc();
    let accepted = 0;
    let peakHeap = 0;
    // 500 000 events over ~1 s while nothing can be written.
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 10_000; i++) if (writer.record(event(i))) accepted++;
      expect(writer.stats().buffered).toBeLessThanOrEqual(10_000);
      if (round === 25) peakHeap = heapAfterGc(); // a full buffer and a batch in retry
      await new Promise((r) => setTimeout(r, 20));
    }
    await writer.flush();
    const st = writer.stats();
    expect(st.written).toBe(0);
    expect(st.buffered).toBe(0);
    expect(st.failedBatches).toBeGreaterThan(0);
    expect(accepted).toBeGreaterThan(0);
    expect(st.dropped).toBe(500_000); // every event accounted for: dropped at the door or with its batch
    expect(st.lastError).toMatch(/ECONNREFUSED|connect/);
    // 10 000 buffered small events are a few MB; 500 000 retained ones would be far more than 32 MB.
    expect(peakHeap - heap0).toBeLessThan(32 * 1024 * 1024);
    expect(heapAfterGc() - heap0).toBeLessThan(8 * 1024 * 1024);
    console.log(
      `dead Postgres: heap +${((peakHeap - heap0) / 1048576).toFixed(1)} MB with a full buffer, stats ${JSON.stringify(st)}`,
    );
    await writer.close();
    await pool.end();
    expect(unhandled).toEqual([]);
  });

  it('close() flushes what is buffered; record() after close is refused', async () => {
    const writer = createEventWriter({ pool: db.pool, flushIntervalMs: 10_000, batchSize: 400 });
    for (let i = 0; i < 1234; i++) writer.record(event(i, { requestId: `close-${i}` }));
    await writer.close();
    expect(await count(`SELECT count(*) AS n FROM request_events WHERE request_id LIKE 'close-%'`)).toBe(
      1234,
    );
    expect(writer.record(event(0))).toBe(false);
    expect(writer.stats()).toMatchObject({ written: 1234, dropped: 1, buffered: 0 });
  });

  it('close() against a dead Postgres gives up after closeTimeoutMs', async () => {
    const pool = await deadPool();
    const writer = createEventWriter({
      pool,
      maxAttempts: 100,
      retryBaseMs: 100,
      retryMaxMs: 100,
      closeTimeoutMs: 300,
    });
    for (let i = 0; i < 700; i++) writer.record(event(i));
    const t0 = Date.now();
    await writer.close();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(writer.stats()).toMatchObject({ written: 0, dropped: 700, buffered: 0 });
    await pool.end();
  });

  it('a row Postgres refuses is isolated and dropped; the rest of its batch lands', async () => {
    const writer = createEventWriter({ pool: db.pool, batchSize: 100 });
    for (let i = 0; i < 100; i++) {
      // A NUL in a client's or model's text is stored as U+FFFD (pg-text.ts); one in a target name is not.
      writer.record(
        event(i, {
          requestId: `poison-${i}`,
          answer: i === 12 ? 'odd \u0000 byte' : 'ok',
          ...(i === 37 ? { target: 'bad \u0000 target' } : {}),
        }),
      );
    }
    await writer.flush();
    expect(writer.stats()).toMatchObject({ written: 99, dropped: 1 });
    expect(await count(`SELECT count(*) AS n FROM request_events WHERE request_id LIKE 'poison-%'`)).toBe(99);
    expect(
      await count(
        `SELECT count(*) AS n FROM request_events WHERE request_id = 'poison-12' AND answer = 'odd \uFFFD byte'`,
      ),
    ).toBe(1);
    await writer.close();
  });

  it.each([1, 3])(
    'shadow pairs: both events share the request id; the comparison row links them (%i in flight)',
    async (concurrency) => {
      const writer = createEventWriter({ pool: db.pool, batchSize: 50, concurrency });
      const prefix = `shadow-c${concurrency}-`;
      for (let i = 0; i < 400; i++) {
        const requestId = `${prefix}${i}`;
        writer.record(
          event(i, { requestId, tag: 'stable', slot: 'blue', target: 'anthropic:claude-sonnet-4' }),
        );
        // Unrelated traffic in between, as on a real router.
        for (let k = 0; k < 3; k++)
          writer.record(event(i * 10 + k, { requestId: `${prefix}other-${i}-${k}` }));
        writer.record(event(i, { requestId, tag: 'shadow', slot: 'green', target: 'openai:gpt-4o' }));
        writer.recordShadowPair({
          route: 'support-bot',
          requestId,
          stableTarget: 'anthropic:claude-sonnet-4',
          shadowTarget: 'openai:gpt-4o',
        });
        if (i % 97 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      await writer.flush();
      expect(writer.stats()).toMatchObject({ written: 2000, pairsWritten: 400, dropped: 0, buffered: 0 });
      const { rows } = await db.pool.query(
        `SELECT c.request_id, c.stable_target, c.shadow_target, c.verdict, s.tag AS stable_tag, s.request_id AS s_req,
              h.tag AS shadow_tag, h.request_id AS h_req
         FROM shadow_comparisons c
         LEFT JOIN request_events s ON s.id = c.stable_event_id
         LEFT JOIN request_events h ON h.id = c.shadow_event_id
        WHERE c.request_id LIKE $1`,
        [`${prefix}%`],
      );
      expect(rows).toHaveLength(400);
      const unlinked = rows.filter(
        (r) =>
          r.stable_tag !== 'stable' ||
          r.shadow_tag !== 'shadow' ||
          r.s_req !== r.request_id ||
          r.h_req !== r.request_id,
      );
      expect(unlinked).toEqual([]);
      await writer.close();
    },
  );

  it('retention: nulls captured prompt and answer older than N days, keeps the metrics', async () => {
    const writer = createEventWriter({ pool: db.pool });
    const old = new Date(Date.now() - 40 * 86_400_000);
    for (let i = 0; i < 30; i++) {
      writer.record(
        event(i, {
          requestId: `ret-old-${i}`,
          route: 'retention',
          prompt: [{ role: 'user', content: 'q' }],
          answer: 'a',
          createdAt: old,
        }),
      );
      writer.record(
        event(i, {
          requestId: `ret-new-${i}`,
          route: 'retention',
          prompt: [{ role: 'user', content: 'q' }],
          answer: 'a',
        }),
      );
    }
    await writer.close();
    expect(await deleteCapturedContentOlderThan(db.pool, 30, 7)).toBe(30);
    expect(
      await count(
        `SELECT count(*) AS n FROM request_events WHERE route = 'retention' AND (prompt IS NOT NULL OR answer IS NOT NULL)`,
      ),
    ).toBe(30);
    expect(
      await count(
        `SELECT count(*) AS n FROM request_events WHERE route = 'retention' AND request_id LIKE 'ret-old-%' AND latency_ms > 0`,
      ),
    ).toBe(30);
    expect(await deleteCapturedContentOlderThan(db.pool, 30)).toBe(0);
  });
});
