/**
 * Sustained request-event write throughput through the batched event writer.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx bench/events.ts
 *
 * Creates a scratch database next to DATABASE_URL's, migrates it, records events as fast as the writer
 * drains them for BENCH_SECONDS (default 10), and prints events/s written to Postgres. Then shorter runs
 * for comparison: synchronous commit, captured prompt/answer, one batch in flight. Drops the database.
 * Target: >= 20 000 events/s.
 */
import pg from 'pg';
import { openDatabase } from '../src/store/database';
import { migrate } from '../src/store/migrate';
import { createEventWriter, type EventWriterOptions, type RequestEvent } from '../src/store/event-writer';
import { databaseUrlOrExit, scratchDatabase } from './lib';

const baseUrl = databaseUrlOrExit();
const seconds = Number(process.env.BENCH_SECONDS ?? 10);

const PROMPT = [
  { role: 'system', content: 'You are a helpful support assistant for ACME. Answer briefly.' },
  { role: 'user', content: 'How do I reset my password if I no longer have access to my email address?' },
];
const ANSWER =
  'Open Settings > Security and choose "Reset password". If you cannot reach your email, use the recovery ' +
  'phone number on file, or contact support with your account id and a photo id to verify ownership.';

function makeEvent(i: number, capture: boolean): RequestEvent {
  const canary = i % 10 === 0;
  return {
    requestId: `bench-${i}`,
    route: 'support-bot',
    tag: canary ? 'canary' : 'stable',
    slot: canary ? 'green' : 'blue',
    target: canary ? 'openai:gpt-4o' : 'anthropic:claude-sonnet-4',
    fallbackDepth: i % 97 === 0 ? 1 : 0,
    latencyMs: 200 + (i % 300),
    errorClass: i % 50 === 0 ? 'timeout' : null,
    inputTokens: 150,
    outputTokens: 90,
    costUsd: 0.00171,
    routingVersion: 7,
    referenceId: i % 4 === 0 ? `q-${i % 200}` : null,
    ...(capture ? { prompt: PROMPT, answer: ANSWER } : {}),
  };
}

async function run(
  label: string,
  pool: pg.Pool,
  durationS: number,
  capture: boolean,
  options: Partial<EventWriterOptions> = {},
) {
  const writer = createEventWriter({ pool, ...options });
  const maxBuffer = options.maxBuffer ?? 10_000;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + durationS * 1000;
  let i = 0;
  // Producer: keep the buffer busy but below full, so the number measured is what the writer drains.
  while (performance.now() < end) {
    const room = maxBuffer - writer.stats().buffered - 600;
    for (let k = 0; k < Math.min(room, 2000); k++) writer.record(makeEvent(i++, capture));
    await new Promise((r) => setImmediate(r));
  }
  await writer.flush();
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const st = writer.stats();
  await writer.close();
  const rate = st.written / elapsed;
  const cpuUsPerEvent = (cpu.user + cpu.system) / Math.max(1, st.written);
  console.log(
    `${label.padEnd(44)} ${Math.round(rate).toLocaleString('en-US').padStart(8)} events/s  ` +
      `(${st.written.toLocaleString('en-US')} in ${elapsed.toFixed(1)} s, dropped ${st.dropped}, failed batches ${st.failedBatches}, ` +
      `writer-process CPU ${cpuUsPerEvent.toFixed(1)} µs/event)`,
  );
  return rate;
}

const scratch = await scratchDatabase(baseUrl, 'mr_bench');
const db = await openDatabase({ url: scratch.url, poolSize: 4 });
try {
  await migrate(db.pool);
  console.log(`event writer benchmark on ${db.url} (batchSize 500, flushIntervalMs 50, maxBuffer 10000)`);
  const main = await run(`default (async commit, 2 batches in flight), ${seconds}s`, db.pool, seconds, false);
  const short = Math.max(2, Math.round(seconds / 3));
  await run(`synchronous commit, ${short}s`, db.pool, short, false, { asyncCommit: false });
  await run(`captured prompt + answer (~0.5 KB), ${short}s`, db.pool, short, true);
  await run(`1 batch in flight, ${short}s`, db.pool, short, false, { concurrency: 1 });
  const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM request_events`);
  console.log(`rows in request_events: ${rows[0].n.toLocaleString('en-US')}`);
  console.log(
    `RESULT sustained ${Math.round(main).toLocaleString('en-US')} events/s (target >= 20,000): ${main >= 20_000 ? 'OK' : 'BELOW TARGET'}`,
  );
} finally {
  await db.close();
  await scratch.drop();
}
