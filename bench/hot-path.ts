/**
 * What the request path pays for the two calls it makes on every request: the sticky bucket of a routing
 * key (`bucketOf`) and queueing a request event (`EventWriter.record`), each side by side with the cheapest
 * thing it could be compared to, in one run.
 *
 *   npx tsx bench/hot-path.ts
 *
 * Needs no database: `record()` only queues on the caller's stack; the writer's pool is never reached while
 * the bench measures (it points at a closed port and the flush interval is longer than the run).
 * Target: bucketOf under 5 µs a call, record() under 20 µs an event (both are typically about 1 µs).
 */
import crypto from 'node:crypto';
import pg from 'pg';
import { bucketOf } from '../src/data-plane/router/assignment';
import { createEventWriter, type RequestEvent } from '../src/store/event-writer';
import { median } from './lib';

const ROUNDS = 5;
const N = 200_000;

/** µs per call of `fn` over `n` inputs, the median of ROUNDS rounds after one warm-up round (JIT). */
function perCallUs(n: number, fn: (i: number) => unknown): number {
  const rounds: number[] = [];
  let sink = 0;
  for (let r = 0; r <= ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) if (fn(i)) sink++;
    if (r > 0) rounds.push(((performance.now() - t0) * 1000) / n);
  }
  if (sink < 0) console.log(sink); // keeps the calls from being optimised away
  return median(rounds);
}

const keys = Array.from({ length: N }, (_, i) => `user-${i}-${crypto.randomBytes(4).toString('hex')}`);
const salt = 'rollout-salt-0123456789';
const bucket = perCallUs(N, (i) => bucketOf(salt, keys[i]));
const sha = perCallUs(N, (i) => crypto.createHash('sha256').update(salt).update(keys[i]).digest()[0]);

function event(i: number): RequestEvent {
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
  };
}
const events = Array.from({ length: N }, (_, i) => event(i));
const pool = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:9/none', max: 1 });
const writer = createEventWriter({
  pool,
  maxBuffer: N * (ROUNDS + 2),
  maxBufferBytes: 2 ** 31,
  flushIntervalMs: 3_600_000,
});
const record = perCallUs(N, (i) => writer.record(events[i]));
const queue: RequestEvent[] = [];
const push = perCallUs(N, (i) => queue.push(events[i]));
const written = writer.stats().written;

const row = (label: string, us: number, vs: string, usVs: number) =>
  console.log(
    `${label.padEnd(30)} ${us.toFixed(3).padStart(7)} µs/call   ${vs.padEnd(34)} ${usVs.toFixed(3).padStart(7)} µs/call   ratio ${(us / usVs).toFixed(2)}×`,
  );
console.log(`hot path, median of ${ROUNDS} rounds of ${N.toLocaleString('en-US')} calls each`);
row('bucketOf (murmur3)', bucket, 'vs SHA-256 of salt + key', sha);
row('EventWriter.record()', record, 'vs Array.push of the event', push);
console.log(`events written during the measurement (must be 0: record() only queues): ${written}`);
await pool.end().catch(() => {});
process.exit(0);
