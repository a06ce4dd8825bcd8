/**
 * Batched writer of request events (and shadow comparison pairs), off the request path.
 *
 * `record()` is synchronous and O(1): it appends to an in-memory buffer and returns. A background pump
 * writes the buffer in batches with ONE multi-row `INSERT ... SELECT FROM unnest($1::text[], ...)` per
 * batch (one round trip, one statement, no per-row parameters), when a batch is full or `flushIntervalMs`
 * after the first buffered event.
 *
 * The same statement adds every event to the per-minute and per-hour rollups that decisions read (see
 * rollup-sql.ts), and stores as rows all canary and shadow events and the `stableSampleRate` share of stable
 * ones (by request-id hash, weighted). A batch refused because its day has no partition creates the day and
 * is retried (no default partition: see 006_partitioned_events.sql).
 *
 * Failure policy (memory stays bounded whatever Postgres does):
 * - the buffer holds at most `maxBuffer` items and about `maxBufferBytes` of their text (a captured prompt
 *   or answer can be large), counting the batch being written; when either is reached, `record()` drops
 *   the event, counts it in `dropped` (and `droppedBufferFull`), logs at most one line per 10 s, and
 *   returns false;
 * - every batch insert has a deadline (`queryTimeoutMs`): behind a network that blackholes it fails and
 *   is retried instead of waiting for the pool's much longer timeout;
 * - a batch that fails for a transient reason (connection refused, timeout, ...) is retried with capped
 *   exponential backoff while new events keep buffering (and, once the buffer is full, dropping): by
 *   default until it lands or the writer is closed, so an outage loses only what the buffer cannot hold;
 *   with `maxAttempts`, the batch is dropped after that many and counted in `failedBatches` and `dropped`;
 * - a batch refused for its data (SQLSTATE class 22/23, e.g. a NUL byte in a text) is split in halves
 *   until the bad rows are isolated; only those are dropped.
 * Delivery is at least once on the happy path and at most once per row when Postgres fails: a retry of a
 * batch whose commit reply was lost can duplicate it (rare; metrics are windowed averages).
 *
 * Shadow pairs: `request_events.id` is assigned by the insert, so the router cannot know it. The router
 * records both events with the SAME `requestId` (tags `stable` and `shadow`) and then the pair; the pair's
 * `shadow_comparisons` row carries `request_id`, which is the link. On insert the writer also fills
 * `stable_event_id`/`shadow_event_id` by looking the events up by (request_id, route, tag). A pair is
 * written only after every event recorded before it has been written (see "Pair ordering" below), so the
 * ids are found whenever the events landed; they stay null when an event was dropped. request_id remains
 * the link of record.
 */
import type pg from 'pg';
import { logger as rootLogger, type Logger } from '../logger';
import { pgSafeJson, pgSafeText } from './pg-text';
import { eventRollupUpsert, ROLLUP_LEVELS } from './rollup-sql';

export type EventTag = 'stable' | 'canary' | 'shadow';

/** One model call made by the router; mirrors `request_events`. */
export interface RequestEvent {
  requestId: string;
  route: string;
  tag: EventTag;
  slot?: 'blue' | 'green' | null;
  /** `provider:model` that answered (or was tried last). */
  target: string;
  fallbackDepth?: number;
  latencyMs: number;
  /** Null/undefined when the call succeeded. */
  errorClass?: string | null;
  inputTokens?: number;
  outputTokens?: number;
  costUsd?: number;
  routingVersion?: number | null;
  referenceId?: string | null;
  /** Captured prompt (JSON), only when capture is enabled. */
  prompt?: unknown;
  /** Captured answer, only when capture is enabled. */
  answer?: string | null;
  /** How the answer ended: 'stop', 'length', 'tool_calls' (the answer was a call of the caller's tools), ... */
  finishReason?: string | null;
  /** The answer's tool calls (OpenAI shape), only when capture is enabled. */
  toolCalls?: unknown[] | null;
  /** The gateway API key's name that made the request (the actor); null for in-process callers. */
  caller?: string | null;
  /** The `x-request-id` the client sent, for its own correlation (never the event's `requestId`). */
  clientRequestId?: string | null;
  /** Provider calls made for the request, retries and fallbacks included (default 1). */
  attempts?: number;
  /** Of those, the ones that failed for the model's reasons (not refusals or hang-ups; default 0). */
  attemptErrors?: number;
  /** Defaults to the time record() was called. */
  createdAt?: Date;
  /**
   * Keep this event as a row even when the stable arm is sampled (a request with a shadow: its pair needs
   * the stable event). A stable event kept only for this carries sample weight 0: it is not in the sample.
   */
  keep?: boolean;
}

/** A stable answer and its shadow, to be compared by the control plane; linked to its events by requestId. */
export interface ShadowPair {
  route: string;
  requestId: string;
  stableTarget: string;
  shadowTarget: string;
  createdAt?: Date;
}

export interface EventWriterOptions {
  pool: pg.Pool;
  /** Most items (events + pairs, including the batch in flight) held in memory (default 10000). */
  maxBuffer?: number;
  /**
   * Most bytes held in memory, estimated from the events' text (prompt, answer, tool calls, ids; a
   * character counted as a byte) plus a fixed cost per item (default 32 MiB).
   */
  maxBufferBytes?: number;
  /** A batch insert with no answer after this long fails and is retried (default 15 000 ms). */
  queryTimeoutMs?: number;
  /** Most rows per INSERT (default 500). */
  batchSize?: number;
  /** Longest an event waits in the buffer before a (partial) batch is written (default 50 ms). */
  flushIntervalMs?: number;
  /** Batches written at once, each on its own pooled connection (default 2). */
  concurrency?: number;
  /**
   * Attempts per batch on transient errors (default unlimited: a batch waits out an outage, holding its
   * place in the bounded buffer; `close()` still gives up after `closeTimeoutMs`).
   */
  maxAttempts?: number;
  /** Backoff between attempts: base doubling up to max (defaults 100 ms, 2000 ms). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /**
   * Commit event batches without waiting for the WAL flush (default true; see ASYNC_COMMIT_CTE). Set false
   * to make every acknowledged batch durable at once.
   */
  asyncCommit?: boolean;
  /**
   * Share of stable events kept as rows of request_events, in (0, 1] (default 1: all). Which ones is decided
   * by a hash of the request id, not at random, so a request's events are in or out together; each kept one
   * carries the weight 1/rate. Canary and shadow events are always kept; the rollups count every event.
   */
  stableSampleRate?: number;
  /** close() gives up on unwritten events after this long and counts them dropped (default 5000 ms). */
  closeTimeoutMs?: number;
  logger?: Logger;
}

export interface EventWriterStats {
  /** Items waiting in memory, including the batch being written. */
  buffered: number;
  /** Their estimated size in bytes (see `maxBufferBytes`). */
  bufferedBytes: number;
  /** Events written. */
  written: number;
  /** Shadow pairs written. */
  pairsWritten: number;
  /** Events and pairs dropped: buffer full, batch failed for good, bad data, or recorded after close. */
  dropped: number;
  /** Of those, dropped because the buffer was full (by count or by bytes). */
  droppedBufferFull: number;
  /** Batches given up after all attempts. */
  failedBatches: number;
  /** Batch attempts that failed (each retry counts). */
  failedAttempts: number;
  lastError: string | null;
}

export interface EventWriter {
  /** Buffers an event; false when it was dropped (buffer full, invalid, or writer closed). Never blocks. */
  record(event: RequestEvent): boolean;
  /** Buffers a shadow comparison pair (record its two events first, same requestId). */
  recordShadowPair(pair: ShadowPair): boolean;
  /**
   * Writes everything buffered now and resolves when the writer is idle: nothing buffered, nothing in
   * flight (each row written, or dropped after its attempts). Under continuous recording it also waits for
   * the newer events; while Postgres is unreachable it waits for it (unless `maxAttempts` is set). Never
   * rejects: look at stats() for failures.
   */
  flush(): Promise<void>;
  stats(): EventWriterStats;
  /** Stops accepting, flushes (bounded by closeTimeoutMs). Does not end the pool. */
  close(): Promise<void>;
}

const TAGS = new Set<string>(['stable', 'canary', 'shadow']);

/**
 * `asyncCommit`: the statement turns synchronous_commit off for its own transaction only (set_config with
 * is_local), saving the WAL flush wait per batch. These are telemetry rows: a Postgres crash may lose the
 * last few hundred milliseconds of committed events, never corrupt anything. Routing changes are not affected.
 */
const ASYNC_COMMIT_CTE = `WITH async_commit AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true))`;

/*
 * One statement per batch inserts the events and adds them to the per-minute rollups (request_rollups), so
 * the rollups never miss or double-count a batch: both commit or neither does. Rollup rows are upserted in
 * key order, so two batches in flight take their row locks in the same order and cannot deadlock. Every
 * event counts in the rollups; only the kept ones (`keep`: all canary and shadow events, the stable sample)
 * become rows of request_events.
 */
const INSERT_EVENTS = `
WITH u AS MATERIALIZED (
  SELECT u.*, to_timestamp(u.created_ms / 1000.0) AS created_at
  FROM /*ASYNC*/ unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::float8[], $8::text[],
    $9::int[], $10::int[], $11::float8[], $12::bigint[], $13::text[], $14::text[], $15::text[], $16::float8[],
    $17::text[], $18::text[], $19::text[], $20::text[], $21::float8[], $22::boolean[], $23::int[], $24::int[])
    AS u(request_id, route, tag, slot, target, fallback_depth, latency_ms, error_class,
         input_tokens, output_tokens, cost_usd, routing_version, reference_id, prompt, answer, created_ms,
         finish_reason, tool_calls, caller, client_request_id, weight, keep, attempts, attempt_errors)
), ins AS (
  INSERT INTO request_events (request_id, route, tag, slot, target, fallback_depth, latency_ms, error_class,
    input_tokens, output_tokens, cost_usd, routing_version, reference_id, prompt, answer, created_at,
    finish_reason, tool_calls, caller, client_request_id, sample_weight, attempts, attempt_errors)
  SELECT u.request_id, u.route, u.tag, u.slot, u.target, u.fallback_depth, u.latency_ms, u.error_class,
    u.input_tokens, u.output_tokens, u.cost_usd, u.routing_version, u.reference_id, u.prompt::jsonb, u.answer,
    u.created_at, u.finish_reason, u.tool_calls::jsonb, u.caller, u.client_request_id, u.weight, u.attempts,
    u.attempt_errors
  FROM u WHERE u.keep
), minutes AS (
${eventRollupUpsert(ROLLUP_LEVELS[0], 'u')}
)
${eventRollupUpsert(ROLLUP_LEVELS[1], 'u')}`;

const INSERT_PAIRS = `
INSERT INTO shadow_comparisons (route, request_id, stable_target, shadow_target, stable_event_id, shadow_event_id, created_at)
SELECT u.route, u.request_id, u.stable_target, u.shadow_target,
  (SELECT e.id FROM request_events e WHERE e.request_id = u.request_id AND e.route = u.route AND e.tag = 'stable'
    ORDER BY e.id DESC LIMIT 1),
  (SELECT e.id FROM request_events e WHERE e.request_id = u.request_id AND e.route = u.route AND e.tag = 'shadow'
    ORDER BY e.id DESC LIMIT 1),
  to_timestamp(u.created_ms / 1000.0)
FROM /*ASYNC*/ unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[])
  AS u(route, request_id, stable_target, shadow_target, created_ms)`;

function withAsyncCommit(sql: string, on: boolean): string {
  if (!on) return sql.replace('/*ASYNC*/ ', '');
  const body = sql.replace('/*ASYNC*/', 'async_commit,');
  // A statement that has its own WITH gets the async_commit CTE as its first one.
  return /^\s*WITH /.test(body)
    ? body.replace(/^\s*WITH /, `${ASYNC_COMMIT_CTE},\n`)
    : `${ASYNC_COMMIT_CTE}\n${body}`;
}

/** FIFO with O(1) amortized push and take (a head index, compacted lazily; Array#shift/slice are O(n)). */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(item: T): void {
    this.items.push(item);
  }
  at(i: number): T {
    return this.items[this.head + i];
  }
  take(n: number): T[] {
    const out = this.items.slice(this.head, this.head + n);
    this.head += out.length;
    if (this.head === this.items.length) this.clear();
    else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return out;
  }
  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

interface Batch {
  /** Estimated bytes of the batch's events and pairs. */
  bytes: number;
  events: RequestEvent[];
  eventTimes: number[];
  pairs: ShadowPair[];
  pairTimes: number[];
  /** The record-order numbers of this batch's events, [start, end). */
  range: { start: number; end: number; settled: boolean } | null;
}

/*
 * Array parameters are sent as ready-made Postgres array literals: pg's generic array serializer escapes
 * every element with a regex and costs about twice as much CPU on the event loop.
 */
const NEEDS_ESCAPE = /["\\]/;
const ESCAPE = /["\\]/g;

function textArray(values: (string | null | undefined)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    if (v === null || v === undefined) out += 'NULL';
    else out += '"' + (NEEDS_ESCAPE.test(v) ? v.replace(ESCAPE, '\\$&') : v) + '"';
  }
  return out + '}';
}

function numberArray(values: (number | null | undefined)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    out += v === null || v === undefined ? 'NULL' : String(v);
  }
  return out + '}';
}

function int(v: number | undefined | null): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.round(v) : 0;
}

function num(v: number | undefined | null): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function optionalInt(v: number | undefined | null): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? Math.round(v) : null;
}

function safeStr(v: string | null | undefined): string | null {
  return v === null || v === undefined ? null : pgSafeText(v);
}

function str(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

/**
 * FNV-1a of the request id with murmur3's final mix (FNV alone leaves ids that differ in their last digits
 * unevenly spread), as a fraction of 2^32: the stable sample is the requests below the rate.
 */
export function sampleFraction(requestId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < requestId.length; i++) {
    h ^= requestId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

/** Whether an event becomes a row, and the number of requests it stands for in weighted statistics. */
export function sampleEvent(e: RequestEvent, stableRate: number): { keep: boolean; weight: number } {
  if (e.tag !== 'stable' || stableRate >= 1) return { keep: true, weight: 1 };
  if (sampleFraction(e.requestId) < stableRate) return { keep: true, weight: 1 / stableRate };
  return { keep: e.keep === true, weight: 0 };
}

function eventParams(events: RequestEvent[], times: number[], stableRate = 1): unknown[] {
  const n = events.length;
  const cols: (string | number | null)[][] = Array.from({ length: 24 }, () => new Array(n));
  for (let i = 0; i < n; i++) {
    const e = events[i];
    cols[0][i] = e.requestId;
    cols[1][i] = e.route;
    cols[2][i] = e.tag;
    cols[3][i] = str(e.slot);
    cols[4][i] = e.target;
    cols[5][i] = int(e.fallbackDepth);
    cols[6][i] = num(e.latencyMs);
    cols[7][i] = str(e.errorClass);
    cols[8][i] = int(e.inputTokens);
    cols[9][i] = int(e.outputTokens);
    cols[10][i] = num(e.costUsd);
    cols[11][i] = optionalInt(e.routingVersion);
    // Client- and model-written text: NUL and lone surrogates would make Postgres refuse the row.
    cols[12][i] = safeStr(e.referenceId);
    cols[13][i] = e.prompt === undefined || e.prompt === null ? null : pgSafeJson(e.prompt);
    cols[14][i] = safeStr(e.answer);
    cols[15][i] = e.createdAt ? e.createdAt.getTime() : times[i];
    cols[16][i] = str(e.finishReason);
    cols[17][i] = e.toolCalls ? pgSafeJson(e.toolCalls) : null;
    cols[18][i] = str(e.caller);
    cols[19][i] = str(e.clientRequestId);
    const sample = sampleEvent(e, stableRate);
    cols[20][i] = sample.weight;
    cols[21][i] = sample.keep ? 't' : 'f';
    cols[22][i] = e.attempts === undefined ? 1 : int(e.attempts);
    cols[23][i] = int(e.attemptErrors);
  }
  return cols.map((c, j) =>
    NUMERIC_EVENT_COLUMNS.has(j) ? numberArray(c as number[]) : textArray(c as string[]),
  );
}

const NUMERIC_EVENT_COLUMNS = new Set([5, 6, 8, 9, 10, 11, 15, 20, 22, 23]);

function pairParams(pairs: ShadowPair[], times: number[]): unknown[] {
  return [
    textArray(pairs.map((p) => p.route)),
    textArray(pairs.map((p) => p.requestId)),
    textArray(pairs.map((p) => p.stableTarget)),
    textArray(pairs.map((p) => p.shadowTarget)),
    numberArray(pairs.map((p, i) => (p.createdAt ? p.createdAt.getTime() : times[i]))),
  ];
}

/** A row whose day has no partition yet (the writer then creates the day; see 006_partitioned_events.sql). */
function isMissingPartition(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  return e?.code === '23514' && typeof e.message === 'string' && e.message.includes('no partition');
}

const DAY = 86_400_000;

/** Creates the daily partitions of the events and shadow comparisons for the UTC days of [fromMs, toMs]. */
export async function ensureEventPartitions(pool: pg.Pool, fromMs: number, toMs: number): Promise<number> {
  const from = new Date(Math.floor(fromMs / DAY) * DAY).toISOString().slice(0, 10);
  const to = new Date(Math.floor(toMs / DAY) * DAY).toISOString().slice(0, 10);
  const { rows } = await pool.query<{ made: number }>(
    `SELECT event_partitions_ensure('request_events', $1::date, $2::date)
          + event_partitions_ensure('shadow_comparisons', $1::date, $2::date) AS made`,
    [from, to],
  );
  return rows[0].made;
}

/** SQLSTATE classes 22 (data exception) and 23 (integrity violation): retrying the same rows cannot help. */
function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

/** Fixed cost of one buffered item: the object, its short fields and the queues' slots. */
const ITEM_BYTES = 320;

/** A cheap estimate of a JSON value's text (no serialization on the request path). */
function textBytes(v: unknown, depth = 0): number {
  if (typeof v === 'string') return v.length + 2;
  if (v === null || typeof v !== 'object') return 8;
  if (depth > 16) return 64;
  let n = 2;
  if (Array.isArray(v)) for (const x of v) n += textBytes(x, depth + 1) + 1;
  else for (const k in v) n += k.length + 4 + textBytes((v as Record<string, unknown>)[k], depth + 1);
  return n;
}

function eventBytes(e: RequestEvent): number {
  let n = ITEM_BYTES + e.requestId.length + e.route.length + e.target.length;
  if (e.prompt !== undefined && e.prompt !== null) n += textBytes(e.prompt);
  if (typeof e.answer === 'string') n += e.answer.length;
  if (e.toolCalls) n += textBytes(e.toolCalls);
  return n;
}

function isValidEvent(e: RequestEvent): boolean {
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof e.requestId === 'string' &&
    typeof e.route === 'string' &&
    typeof e.target === 'string' &&
    TAGS.has(e.tag)
  );
}

export function createEventWriter(options: EventWriterOptions): EventWriter {
  const pool = options.pool;
  const maxBuffer = options.maxBuffer ?? 10_000;
  const maxBufferBytes = options.maxBufferBytes ?? 32 * 1024 * 1024;
  const queryTimeoutMs = options.queryTimeoutMs ?? 15_000;
  const batchSize = options.batchSize ?? 500;
  const flushIntervalMs = options.flushIntervalMs ?? 50;
  const concurrency = Math.max(1, options.concurrency ?? 2);
  const maxAttempts = Math.max(1, options.maxAttempts ?? Number.POSITIVE_INFINITY);
  const retryBaseMs = options.retryBaseMs ?? 100;
  const retryMaxMs = options.retryMaxMs ?? 2000;
  const closeTimeoutMs = options.closeTimeoutMs ?? 5000;
  const asyncCommit = options.asyncCommit ?? true;
  const stableSampleRate = options.stableSampleRate ?? 1;
  if (!(stableSampleRate > 0 && stableSampleRate <= 1))
    throw new Error(`stableSampleRate must be in (0, 1], got ${stableSampleRate}`);
  const eventColumns = (rows: RequestEvent[], times: number[]) => eventParams(rows, times, stableSampleRate);
  const insertEvents = withAsyncCommit(INSERT_EVENTS, asyncCommit);
  const insertPairs = withAsyncCommit(INSERT_PAIRS, asyncCommit);
  const log = (options.logger ?? rootLogger).child({ component: 'event-writer' });

  const events = new Fifo<RequestEvent>();
  const eventTimes = new Fifo<number>();
  const eventSizes = new Fifo<number>();
  const pairs = new Fifo<ShadowPair>();
  const pairTimes = new Fifo<number>();
  /** For each buffered pair: how many events had been recorded when it was. */
  const pairEventSeq = new Fifo<number>();
  let eventsRecorded = 0;
  let eventsTaken = 0;
  let inFlight = 0;
  /** Estimated bytes buffered (pending) and being written (in flight). */
  let pendingBytes = 0;
  let inFlightBytes = 0;
  let lastDropLogAt = 0;
  let activeWorkers = 0;
  let timer: NodeJS.Timeout | null = null;
  let kickScheduled = false;
  let closing = false;
  let abandoned = false; // close timed out: stop retrying, drop what is left
  let idleWaiters: (() => void)[] = [];
  const sleepers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();

  const s = {
    written: 0,
    pairsWritten: 0,
    dropped: 0,
    droppedBufferFull: 0,
    failedBatches: 0,
    failedAttempts: 0,
    lastError: null as string | null,
  };

  const pending = () => events.length + pairs.length;

  function full(bytes: number): boolean {
    return pending() + inFlight >= maxBuffer || pendingBytes + inFlightBytes + bytes > maxBufferBytes;
  }

  /** Counts an item dropped for want of room; one log line per 10 s however many (an outage drops thousands). */
  function dropFull(): void {
    s.dropped++;
    s.droppedBufferFull++;
    const now = Date.now();
    if (now - lastDropLogAt >= 10_000) {
      lastDropLogAt = now;
      log.warn(
        {
          dropped: s.dropped,
          droppedBufferFull: s.droppedBufferFull,
          buffered: pending() + inFlight,
          bufferedBytes: pendingBytes + inFlightBytes,
          maxBuffer,
          maxBufferBytes,
          lastError: s.lastError,
        },
        'request events dropped: the event buffer is full (Postgres slow or unreachable)',
      );
    }
  }

  function afterAppend(): void {
    if (events.length >= batchSize || pairs.length >= batchSize) scheduleKick();
    else if (!timer) {
      timer = setTimeout(() => {
        timer = null;
        kick(true);
      }, flushIntervalMs);
      timer.unref();
    }
  }

  function scheduleKick(): void {
    // Never write on the caller's stack: record() must return at once.
    if (kickScheduled) return;
    kickScheduled = true;
    setImmediate(() => {
      kickScheduled = false;
      kick(false);
    });
  }

  function kick(due: boolean): void {
    while (
      activeWorkers < concurrency &&
      hasWork() &&
      (due || flushRequested() || events.length >= batchSize || pairs.length >= batchSize)
    ) {
      activeWorkers++;
      // worker() takes its first batch synchronously, so hasWork() above sees what is left for the next.
      void worker().finally(() => {
        activeWorkers--;
        if (pending() > 0) {
          if (flushRequested() || events.length >= batchSize || pairs.length >= batchSize) scheduleKick();
          else if (!timer) afterAppend();
        }
        checkIdle();
      });
    }
  }

  function flushRequested(): boolean {
    return idleWaiters.length > 0 || closing;
  }

  /*
   * Pair ordering. Events are numbered in record order; a pair remembers how many events had been recorded
   * before it (its own two included). A pair may be written only once all those events are settled
   * (written or given up), so that its event-id lookup finds them even with several batches in flight:
   * either in an earlier, settled batch, or in the same batch, whose events the worker writes first.
   */
  let settledUpTo = 0; // every event numbered below this is settled
  const unsettled: { start: number; end: number; settled: boolean }[] = [];

  function pairBound(batchStart: number, batchEnd: number): number {
    return settledUpTo === batchStart ? batchEnd : settledUpTo;
  }

  function hasWork(): boolean {
    return events.length > 0 || (pairs.length > 0 && pairEventSeq.at(0) <= settledUpTo);
  }

  function settle(range: { start: number; end: number; settled: boolean } | null): void {
    if (!range) return;
    range.settled = true;
    while (unsettled.length > 0 && unsettled[0].settled) settledUpTo = unsettled.shift()!.end;
  }

  function take(): Batch {
    const ev = events.take(batchSize);
    const et = eventTimes.take(batchSize);
    let bytes = 0;
    for (const b of eventSizes.take(batchSize)) bytes += b;
    const start = eventsTaken;
    eventsTaken += ev.length;
    let range: Batch['range'] = null;
    if (ev.length > 0) {
      range = { start, end: eventsTaken, settled: false };
      unsettled.push(range);
    }
    const bound = pairBound(start, eventsTaken);
    let np = 0;
    while (np < pairs.length && np < batchSize && pairEventSeq.at(np) <= bound) np++;
    const pr = pairs.take(np);
    const pt = pairTimes.take(np);
    pairEventSeq.take(np);
    bytes += np * ITEM_BYTES;
    pendingBytes -= bytes;
    return { bytes, events: ev, eventTimes: et, pairs: pr, pairTimes: pt, range };
  }

  async function worker(): Promise<void> {
    for (;;) {
      if (!hasWork()) return;
      const batch = take();
      const size = batch.events.length + batch.pairs.length;
      if (size === 0) return;
      inFlight += size;
      inFlightBytes += batch.bytes;
      try {
        // Events first: a pair's lookup of its event ids needs them committed.
        if (batch.events.length > 0) {
          try {
            const n = await writeRows('events', batch.events, batch.eventTimes, insertEvents, eventColumns);
            s.written += n; // (not `s.written += await ...`: that reads s.written before the await)
          } finally {
            settle(batch.range);
          }
        }
        if (batch.pairs.length > 0) {
          const n = await writeRows('pairs', batch.pairs, batch.pairTimes, insertPairs, pairParams);
          s.pairsWritten += n;
        }
      } finally {
        inFlight -= size;
        inFlightBytes -= batch.bytes;
      }
      // Keep going only with a full batch (or a flush); a partial one waits for the timer to fill up.
      if (!(flushRequested() || events.length >= batchSize || pairs.length >= batchSize)) return;
    }
  }

  /** Writes rows with retries; returns how many landed (the rest are counted as dropped). */
  async function writeRows<T>(
    kind: string,
    rows: T[],
    times: number[],
    sql: string,
    params: (rows: T[], times: number[]) => unknown[],
  ): Promise<number> {
    let partitionsMade = false;
    for (let attempt = 1; ; attempt++) {
      if (abandoned) {
        s.dropped += rows.length;
        return 0;
      }
      try {
        // (pg honours query_timeout per query; its types only know it on the client's config)
        await pool.query({
          text: sql,
          values: params(rows, times),
          query_timeout: queryTimeoutMs,
        } as pg.QueryConfig);
        return rows.length;
      } catch (err) {
        s.failedAttempts++;
        s.lastError = (err as Error).message ?? String(err);
        if (isMissingPartition(err) && !partitionsMade) {
          // The safety net for a day nobody created ahead (or an event from a day retention dropped): the
          // days of this batch's rows are created (each on its own, not the span between) and it is retried.
          partitionsMade = true;
          s.failedAttempts--;
          s.lastError = null;
          const days = new Set(
            rows.map((r, i) =>
              Math.floor(((r as { createdAt?: Date }).createdAt?.getTime() ?? times[i]) / DAY),
            ),
          );
          try {
            for (const d of days) await ensureEventPartitions(pool, d * DAY, d * DAY);
            log.warn({ kind, days: days.size }, 'created missing daily partitions of request events');
          } catch (e) {
            s.lastError = (e as Error).message;
          }
          attempt--;
          continue;
        }
        if (isDataError(err)) {
          if (rows.length === 1) {
            log.warn({ err: s.lastError, kind }, 'request event refused by Postgres; dropped');
            s.dropped += 1;
            return 0;
          }
          // Isolate the bad rows: split in halves.
          const mid = rows.length >> 1;
          const a = await writeRows(kind, rows.slice(0, mid), times.slice(0, mid), sql, params);
          const b = await writeRows(kind, rows.slice(mid), times.slice(mid), sql, params);
          return a + b;
        }
        if (attempt >= maxAttempts) {
          s.failedBatches++;
          s.dropped += rows.length;
          log.warn(
            { err: s.lastError, kind, rows: rows.length, attempts: attempt },
            'request event batch dropped',
          );
          return 0;
        }
        await sleep(Math.min(retryMaxMs, retryBaseMs * 2 ** (attempt - 1)));
      }
    }
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = {
        resolve,
        timer: setTimeout(() => {
          sleepers.delete(entry);
          resolve();
        }, ms),
      };
      sleepers.add(entry);
    });
  }

  function checkIdle(): void {
    if (pending() === 0 && activeWorkers === 0 && inFlight === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
    } else if (activeWorkers === 0 && pending() > 0 && flushRequested()) {
      kick(true);
    }
  }

  function flush(): Promise<void> {
    if (pending() === 0 && activeWorkers === 0 && inFlight === 0) return Promise.resolve();
    const p = new Promise<void>((resolve) => idleWaiters.push(resolve));
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    kick(true);
    return p;
  }

  return {
    record(event: RequestEvent): boolean {
      if (closing || !isValidEvent(event)) {
        s.dropped++;
        return false;
      }
      const bytes = eventBytes(event);
      if (full(bytes)) {
        dropFull();
        return false;
      }
      events.push(event);
      eventTimes.push(Date.now());
      eventSizes.push(bytes);
      pendingBytes += bytes;
      eventsRecorded++;
      afterAppend();
      return true;
    },

    recordShadowPair(pair: ShadowPair): boolean {
      if (closing || typeof pair?.requestId !== 'string' || typeof pair.route !== 'string') {
        s.dropped++;
        return false;
      }
      if (full(ITEM_BYTES)) {
        dropFull();
        return false;
      }
      pendingBytes += ITEM_BYTES;
      pairs.push(pair);
      pairTimes.push(Date.now());
      pairEventSeq.push(eventsRecorded);
      afterAppend();
      return true;
    },

    flush,

    stats(): EventWriterStats {
      return { buffered: pending() + inFlight, bufferedBytes: pendingBytes + inFlightBytes, ...s };
    },

    async close(): Promise<void> {
      closing = true;
      let deadline: NodeJS.Timeout | undefined;
      await Promise.race([
        flush(),
        new Promise<void>((resolve) => {
          deadline = setTimeout(resolve, closeTimeoutMs);
        }),
      ]);
      if (deadline) clearTimeout(deadline);
      if (pending() > 0 || inFlight > 0 || activeWorkers > 0) {
        abandoned = true;
        s.dropped += pending();
        for (const q of [events, eventTimes, eventSizes, pairs, pairTimes, pairEventSeq]) q.clear();
        pendingBytes = 0;
        for (const sl of sleepers) {
          clearTimeout(sl.timer);
          sl.resolve();
        }
        sleepers.clear();
        // A query in flight finishes (or fails) on its own; wait for the workers to notice.
        await new Promise<void>((resolve) => {
          if (activeWorkers === 0) resolve();
          else idleWaiters.push(resolve);
        });
      }
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}

/**
 * Capture retention: nulls `prompt`, `answer` and `tool_calls` of events older than `days` (in chunks, so a large
 * backlog does not hold one long lock). Scores, tokens and latencies are kept. Returns the rows changed.
 */
export async function deleteCapturedContentOlderThan(
  pool: pg.Pool,
  days: number,
  chunk = 5000,
): Promise<number> {
  if (!(days >= 0)) throw new Error(`days must be a non-negative number, got ${days}`);
  let total = 0;
  for (;;) {
    const { rowCount } = await pool.query(
      `UPDATE request_events SET prompt = NULL, answer = NULL, tool_calls = NULL
        WHERE (id, created_at) IN (
          SELECT id, created_at FROM request_events
           WHERE created_at < now() - make_interval(secs => $1::float8 * 86400)
             AND (prompt IS NOT NULL OR answer IS NOT NULL OR tool_calls IS NOT NULL)
           LIMIT $2)`,
      [days, chunk],
    );
    total += rowCount ?? 0;
    if ((rowCount ?? 0) < chunk) return total;
  }
}
