/**
 * The ROUTER: for every request, decide which slot of a route answers it, call that slot's fallback chain,
 * and record what happened. In-process (a library call) or behind the gateway.
 *
 * Per request (the hot path never waits for Postgres):
 * 1. the route's state comes from the in-memory routing cache (`RoutingCache.get`, synchronous);
 * 2. `assignTag` picks stable or canary (sticky per routing key, per-request random without one);
 *    canary → the candidate slot's chain, stable → the stable slot's chain. A blue-green flip is a change
 *    of `stableSlot`, so it needs nothing here;
 * 3. the chain answers (fallbacks, breaker, quality check live in the provider layer);
 * 4. ONE request event is handed to the batched event writer (`record` is a synchronous buffer append);
 * 5. for a sampled share (`shadowRate`) of stable requests, the candidate is called too, concurrently, and
 *    never awaited on the response path (see shadow.ts).
 */
import crypto from 'node:crypto';
import type pg from 'pg';
import { logger as rootLogger, type Logger } from '../../logger';
import {
  ChainExhaustedError,
  ProviderError,
  type Attempt,
  createFallbackChain,
  createProviderAdapter,
  keyOf,
  type BreakerSnapshot,
  type CallOptions,
  type ChainResult,
  type CircuitBreakerOptions,
  type FallbackChain,
  type ProviderRegistry,
  type QualityCheck,
  type UpstreamBytes,
  type RetryOptions,
  type Target,
  type TargetParams,
} from '../providers';
import type { Database } from '../../store/database';
import {
  createEventWriter,
  type EventWriter,
  type EventWriterOptions,
  type EventWriterStats,
  type RequestEvent,
} from '../../store/event-writer';
import {
  RouteNotFoundError,
  candidateSlotOf,
  slotOf,
  type RouteState,
  type SlotConfig,
} from '../../store/routing-state';
import { kindDescriptor } from '../providers/kinds';
import { isModelAttemptFailure, recordedErrorClass, requestedMaxTokens } from '../providers/blame';
import { answerOf } from './answer';
import { assignTag } from './assignment';
import { RouterMetrics } from './prometheus';
import {
  createRoutingCache,
  type RoutingCache,
  type RoutingCacheHealth,
  type RoutingCacheOptions,
} from './routing-cache';
import { ShadowRunner, type ShadowOutcome } from './shadow';
import { capturePolicy, type CaptureOptions } from './capture';
import type { RouteDecision, RouterRequest, ServedTag } from './types';

export { RouteNotFoundError };
export type { RouteDecision, RouterRequest, ServedTag };
export type { ShadowOutcome };

export interface RouterOptions {
  /** An opened database (pool, LISTEN connection string, notify support). Or give `pool`. */
  database?: Database;
  pool?: pg.Pool;
  /** For the LISTEN connection when `pool` was built without a connection string. */
  connectionString?: string;
  providers: {
    registry: ProviderRegistry;
    /** OpenAI-compatible transport: 'lean' (default, undici) or 'sdk'. */
    transport?: 'lean' | 'sdk';
    breaker?: CircuitBreakerOptions | false;
    qualityCheck?: QualityCheck | false;
    /** Per-attempt timeout of served calls: a JSON call, or a stream's first chunk (default 30 000 ms). */
    perAttemptTimeoutMs?: number;
    /** Longest silence between two chunks of a served stream (default `perAttemptTimeoutMs`). */
    streamIdleTimeoutMs?: number;
    /** Retries of the same target before its fallbacks (default none; the gateway command sets some). */
    retry?: RetryOptions;
  };
  /** A routing cache to share (not closed by the router), or options for the router's own. */
  cache?: RoutingCache | Omit<RoutingCacheOptions, 'database' | 'pool' | 'connectionString'>;
  /** An event writer to share (not closed by the router), options for the router's own, or false for none. */
  events?: EventWriter | Omit<EventWriterOptions, 'pool'> | false;
  /**
   * Store prompt and answer with each event, for scoring: by default on routes under rollout only, deleted
   * after the retention period (see capture.ts). `{ enabled: true }` captures every route.
   */
  capture?: CaptureOptions;
  shadow?: {
    /** Timeout of a shadow call (default 10 000 ms). */
    timeoutMs?: number;
    /** Shadow calls in flight at most; more are skipped and counted (default 64). */
    maxConcurrent?: number;
  };
  /**
   * Keep the upstream's response bytes of OpenAI-compatible calls (`result.upstream`) so the gateway can
   * pass them through without re-serializing. Default false.
   */
  keepRaw?: boolean;
  /** [0, 1) source for anonymous canary assignment and shadow sampling (default Math.random). */
  random?: () => number;
  logger?: Logger;
}

export interface RouterResult extends RouteDecision {
  /** `provider:model` that answered. */
  target: string;
  /** The model that answered (its name at the provider). */
  model: string;
  fallbackDepth: number;
  text: string;
  /** The chain's full result (usage, cost, finish reason, attempts). */
  result: ChainResult;
  /** Milliseconds from the routing decision to the answer. */
  latencyMs: number;
  /** The upstream's response bytes, when `keepRaw` and the answering target is OpenAI-compatible. */
  upstream?: UpstreamBytes;
  /** Settles once the shadow call (if one was made) is recorded; never rejects. */
  shadow?: Promise<ShadowOutcome>;
}

/** A served call that failed: the chain's error plus the decision (for headers and logs). */
export class RouteCallError extends Error {
  override readonly name = 'RouteCallError';
  /** `provider:model` tried last. */
  readonly target: string;
  constructor(
    readonly decision: RouteDecision,
    readonly error: ProviderError,
  ) {
    super(`route "${decision.route}" (${decision.tag}): ${error.message}`);
    const attempts = error.attempts;
    this.target =
      attempts && attempts.length > 0 ? attempts[attempts.length - 1].target : keyOf(decision.targets[0]);
  }
  get errorClass() {
    return this.error.errorClass;
  }
}

export type RouterStreamEvent =
  /**
   * `target` is the `provider:model` streaming this delta (known from the first delta on); `sse` the
   * OpenAI chunks it stands for, when the adapter has them (see `StreamEvent`).
   */
  | { type: 'delta'; text: string; target: string; sse?: string }
  | { type: 'done'; result: RouterResult; sseTail?: string }
  /** `partial`: deltas were already yielded and must be discarded by the consumer. */
  | { type: 'error'; error: RouteCallError; partial: boolean };

export interface RouterStream extends AsyncIterable<RouterStreamEvent> {
  readonly decision: RouteDecision;
  readonly shadow?: Promise<ShadowOutcome>;
}

export interface RouterHealth {
  ok: boolean;
  routing: RoutingCacheHealth;
  postgres: { ok: boolean; latencyMs?: number; error?: string };
  events: EventWriterStats | null;
  shadow: { inFlight: number; skipped: number };
  breakers: BreakerSnapshot[];
}

export interface Router {
  complete(route: string, request: RouterRequest): Promise<RouterResult>;
  /** Throws `RouteNotFoundError` at once for an unknown route; every later failure is an event. */
  stream(route: string, request: RouterRequest): RouterStream;
  /** The cached routing state (what this router serves from now). */
  state(route: string): RouteState | undefined;
  /** Every route this router serves, from its cache. */
  routes(): RouteState[];
  /** Routing freshness, a Postgres round trip (bounded by `timeoutMs`), event buffer, shadow and breakers. */
  health(timeoutMs?: number): Promise<RouterHealth>;
  readonly metrics: RouterMetrics;
  /** The pool the router reads and writes with (the gateway stores feedback through it). */
  readonly pool: pg.Pool;
  /** Waits until every event recorded so far is written (tests, shutdown). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Provider calls a request made (retries and fallbacks included; a target skipped by an open breaker was
 * not called) and how many of them failed for the model's reasons: retries that ended well are still
 * evidence (the users waited, the calls cost), compared per arm by the policy's attempt-error test.
 */
function attemptCounts(attempts: readonly Attempt[] | undefined): { attempts: number; errors: number } {
  if (!attempts) return { attempts: 1, errors: 0 };
  let n = 0;
  let errors = 0;
  for (const a of attempts) {
    if (a.errorClass === 'circuit_open') continue;
    n++;
    if (isModelAttemptFailure(a.errorClass)) errors++;
  }
  return { attempts: n, errors };
}

export async function createRouter(options: RouterOptions): Promise<Router> {
  const log = (options.logger ?? rootLogger).child({ component: 'router' });
  const pool = options.pool ?? options.database?.pool;
  if (!pool) throw new Error('createRouter needs a database or a pool');
  const random = options.random ?? Math.random;
  const capture = capturePolicy(options.capture);
  const { registry } = options.providers;
  const perAttemptTimeoutMs = options.providers.perAttemptTimeoutMs ?? 30_000;
  const streamIdleTimeoutMs = options.providers.streamIdleTimeoutMs;

  // The registry's adapters (the lean undici transport for OpenAI-compatible upstreams by default). The
  // chain's results and deltas say which target answered and carry the upstream bytes (`keepBytes`).
  const adapter = createProviderAdapter({
    registry,
    transport: options.providers.transport,
    defaultTimeoutMs: perAttemptTimeoutMs,
  });
  const keepBytes = options.keepRaw === true;
  const chain: FallbackChain = createFallbackChain({
    adapter,
    breaker: options.providers.breaker,
    qualityCheck: options.providers.qualityCheck,
    perAttemptTimeoutMs,
    retry: options.providers.retry,
    logger: options.logger,
  });

  let cache: RoutingCache;
  const ownsCache = !(options.cache && 'get' in options.cache);
  if (!ownsCache) cache = options.cache as RoutingCache;
  else {
    cache = await createRoutingCache({
      ...(options.cache as RoutingCacheOptions | undefined),
      ...(options.database ? { database: options.database } : { pool }),
      connectionString: options.connectionString,
      logger: options.logger,
    });
  }

  // A kind's SDK loads on first use (tens of MB a gateway needs only when a route names that kind): its
  // descriptor's warm-up runs as soon as a route names such a target, so no served request waits for it.
  const transport = options.providers.transport ?? 'lean';
  const warmed = new Set<string>();
  const warm = (state: RouteState | undefined) => {
    if (!state) return;
    for (const slot of [state.blue, state.green]) {
      if (!slot) continue;
      for (const target of [slot.target, ...slot.fallbacks]) {
        const kind = registry.kindOf(target.provider);
        if (warmed.has(kind)) continue;
        warmed.add(kind);
        void kindDescriptor(kind)
          ?.warm?.(transport)
          .catch(() => {});
      }
    }
  };
  for (const state of cache.all()) warm(state);
  const unwarm = cache.subscribe((next) => warm(next));

  const ownsWriter = options.events !== false && !(options.events && 'record' in options.events);
  const writer: EventWriter | undefined =
    options.events === false
      ? undefined
      : ownsWriter
        ? createEventWriter({
            ...(options.events as Omit<EventWriterOptions, 'pool'> | undefined),
            pool,
            logger: options.logger,
          })
        : (options.events as EventWriter);

  const metrics = new RouterMetrics({
    events: () => writer?.stats(),
    breakers: () => chain.breakerStates(),
    routing: () => cache.health(),
    routes: () => cache.all(),
  });

  const shadows = new ShadowRunner({
    chain,
    timeoutMs: options.shadow?.timeoutMs ?? 10_000,
    maxConcurrent: options.shadow?.maxConcurrent ?? 64,
    record: (event) => writer?.record(event),
    recordPair: (pair) => writer?.recordShadowPair(pair),
    metrics,
    capture,
    log,
  });

  // Chains per slot config object: routing state objects are replaced (never mutated) on change.
  const chains = new WeakMap<SlotConfig, Target[]>();
  const chainFor = (slot: SlotConfig): Target[] => {
    let targets = chains.get(slot);
    if (!targets) {
      targets = [slot.target, ...slot.fallbacks];
      chains.set(slot, targets);
    }
    return targets;
  };

  function decide(route: string, request: RouterRequest): { decision: RouteDecision; state: RouteState } {
    const state = cache.get(route);
    if (!state) throw new RouteNotFoundError(route);
    let tag: ServedTag = assignTag(state, request.key, random);
    let slot = tag === 'canary' ? candidateSlotOf(state) : state.stableSlot;
    let config = slotOf(state, slot);
    if (!config) {
      // Unreachable for validated state (a canary share needs a candidate); serve stable rather than fail.
      tag = 'stable';
      slot = state.stableSlot;
      config = slotOf(state, slot)!;
    }
    let targets: readonly Target[] = chainFor(config);
    if (request.params) targets = withCallerParams(targets, request.params);
    return {
      state,
      decision: {
        route,
        requestId: request.requestId ?? crypto.randomUUID(),
        tag,
        slot,
        routingVersion: state.version,
        targets,
      },
    };
  }

  /** Requests whose stable call has a shadow: their event is kept whatever the stable sample (the pair needs it). */
  const shadowed = new WeakSet<RouteDecision>();

  /**
   * The request's event, every field in one literal: events wait in the writer's buffer for their batch, so
   * they outlive young-generation collections; one shape and no properties added afterwards keeps each
   * one allocation.
   */
  function event(
    decision: RouteDecision,
    request: RouterRequest,
    latencyMs: number,
    target: string,
    fallbackDepth: number,
    errorClass: string | null,
    result: ChainResult | undefined,
    attempts: readonly Attempt[] | undefined,
  ): RequestEvent {
    const captured = capture.captures(decision.route, cache.get(decision.route));
    const tried = attemptCounts(attempts);
    return {
      requestId: decision.requestId,
      route: decision.route,
      tag: decision.tag,
      slot: decision.slot,
      target,
      fallbackDepth,
      latencyMs,
      errorClass,
      routingVersion: decision.routingVersion,
      referenceId: request.referenceId ?? null,
      caller: request.caller ?? null,
      clientRequestId: request.clientRequestId ?? null,
      inputTokens: result?.usage.inputTokens,
      outputTokens: result?.usage.outputTokens,
      costUsd: result?.costUsd,
      finishReason: result?.finishReason,
      prompt: captured ? capture.prompt(request.messages) : undefined,
      answer: captured && result ? answerOf(result) : undefined,
      toolCalls: captured && result?.toolCalls ? result.toolCalls : undefined,
      keep: shadowed.has(decision),
      attempts: tried.attempts,
      attemptErrors: tried.errors,
    };
  }

  function recordSuccess(
    decision: RouteDecision,
    request: RouterRequest,
    result: ChainResult,
    latencyMs: number,
  ): string {
    const target = keyOf(result.target);
    writer?.record(
      event(decision, request, latencyMs, target, result.fallbackDepth, null, result, result.attempts),
    );
    metrics.call(decision.route, decision.tag, target, 'ok', latencyMs, result.fallbackDepth);
    return target;
  }

  function recordFailure(
    decision: RouteDecision,
    request: RouterRequest,
    error: ProviderError,
    latencyMs: number,
    stream: boolean,
  ): RouteCallError {
    const failure = new RouteCallError(decision, error);
    // Classified at write time (client_* when the request caused it): statistics filter on the class.
    const errorClass = recordedErrorClass(
      error.errorClass,
      {
        stream,
        maxTokens: requestedMaxTokens({ request: request.openai }, decision.targets[0]),
        timeoutMs: perAttemptTimeoutMs,
      },
      error.detail,
    );
    const fallbackDepth = Math.max(0, (error.attempts?.length ?? 1) - 1);
    writer?.record(
      event(
        decision,
        request,
        latencyMs,
        failure.target,
        fallbackDepth,
        errorClass,
        undefined,
        error.attempts,
      ),
    );
    metrics.call(decision.route, decision.tag, failure.target, error.errorClass, latencyMs, 0);
    return failure;
  }

  function asProviderError(thrown: unknown, decision: RouteDecision): ProviderError {
    if (thrown instanceof ProviderError) return thrown;
    // Not expected (the chain only throws ProviderError); keep the router's contract anyway.
    log.error({ err: thrown }, 'unexpected error from the fallback chain');
    return new ProviderError({
      errorClass: 'server_error',
      target: keyOf(decision.targets[0]),
      message: thrown instanceof Error ? thrown.message : String(thrown),
    });
  }

  async function complete(route: string, request: RouterRequest): Promise<RouterResult> {
    const { decision, state } = decide(route, request);
    const start = performance.now();
    const callOptions: CallOptions = {
      timeoutMs: perAttemptTimeoutMs,
      requestId: decision.requestId,
      signal: request.signal,
      request: request.openai,
      keepBytes,
    };
    const served = chain.complete(decision.targets, request.messages, callOptions);
    // Started after the served call was dispatched, and never awaited here.
    const shadow = shadows.maybeStart(state, decision, request, random);
    if (shadow) shadowed.add(decision);
    let result: ChainResult;
    try {
      result = await served;
    } catch (thrown) {
      const failure = recordFailure(
        decision,
        request,
        asProviderError(thrown, decision),
        performance.now() - start,
        false,
      );
      shadow?.stableDone(undefined);
      throw failure;
    }
    const latencyMs = performance.now() - start;
    const target = recordSuccess(decision, request, result, latencyMs);
    shadow?.stableDone(target);
    // Every field in one literal (no spread, no properties added after): one allocation of one shape.
    const out: RouterResult = {
      route: decision.route,
      requestId: decision.requestId,
      tag: decision.tag,
      slot: decision.slot,
      routingVersion: decision.routingVersion,
      targets: decision.targets,
      target,
      model: result.target.model,
      fallbackDepth: result.fallbackDepth,
      text: result.text,
      result,
      latencyMs,
      upstream: result.upstream,
      shadow: shadow?.outcome,
    };
    return out;
  }

  function stream(route: string, request: RouterRequest): RouterStream {
    const { decision, state } = decide(route, request);
    let shadow: ReturnType<ShadowRunner['maybeStart']>;
    let current = keyOf(decision.targets[0]);
    const callOptions: CallOptions = {
      timeoutMs: perAttemptTimeoutMs,
      idleTimeoutMs: streamIdleTimeoutMs,
      requestId: decision.requestId,
      signal: request.signal,
      request: request.openai,
    };

    async function* events(): AsyncGenerator<RouterStreamEvent> {
      const start = performance.now();
      let settled = false;
      try {
        const upstream = chain.stream(decision.targets, request.messages, callOptions);
        shadow = shadows.maybeStart(state, decision, request, random);
        if (shadow) shadowed.add(decision);
        for await (const e of upstream) {
          if (e.type === 'delta') {
            current = e.target;
            yield e; // the same shape as the router's delta event
          } else if (e.type === 'done') {
            settled = true;
            const latencyMs = performance.now() - start;
            const target = recordSuccess(decision, request, e.result, latencyMs);
            shadow?.stableDone(target);
            yield {
              type: 'done',
              result: {
                route: decision.route,
                requestId: decision.requestId,
                tag: decision.tag,
                slot: decision.slot,
                routingVersion: decision.routingVersion,
                targets: decision.targets,
                target,
                model: e.result.target.model,
                fallbackDepth: e.result.fallbackDepth,
                text: e.result.text,
                result: e.result,
                latencyMs,
              },
              sseTail: e.sseTail,
            };
          } else {
            settled = true;
            const failure = recordFailure(decision, request, e.error, performance.now() - start, true);
            shadow?.stableDone(undefined);
            yield { type: 'error', error: failure, partial: e.partial };
          }
        }
      } finally {
        if (!settled) {
          // The consumer stopped reading (client gone): the call counts as cancelled.
          const error = new ChainExhaustedError([
            { target: current, errorClass: 'cancelled', latencyMs: performance.now() - start },
          ]);
          recordFailure(decision, request, error, performance.now() - start, true);
          shadow?.stableDone(undefined);
        }
      }
    }

    const iterable = events();
    return {
      decision,
      get shadow() {
        return shadow?.outcome;
      },
      [Symbol.asyncIterator]: () => iterable,
    };
  }

  async function health(timeoutMs = 1000): Promise<RouterHealth> {
    const routing = cache.health();
    const postgres = await pingPostgres(pool!, timeoutMs);
    return {
      ok: routing.ok && postgres.ok,
      routing,
      postgres,
      events: writer?.stats() ?? null,
      shadow: shadows.stats(),
      breakers: chain.breakerStates(),
    };
  }

  return {
    complete,
    stream,
    state: (route) => cache.get(route),
    routes: () => cache.all(),
    health,
    metrics,
    pool,
    flush: async () => {
      await shadows.idle();
      await writer?.flush();
    },
    async close() {
      unwarm();
      await shadows.idle(2000);
      if (ownsWriter) await writer?.close();
      if (ownsCache) await cache.close();
      await chain.close();
      await adapter.close();
    },
  };
}

/** The caller's params under the target's own (the rollout's settings win). New objects: state is shared. */
function withCallerParams(targets: readonly Target[], params: TargetParams): Target[] {
  return targets.map((t) => ({ ...t, params: { ...params, ...t.params } }));
}

async function pingPostgres(pool: pg.Pool, timeoutMs: number): Promise<RouterHealth['postgres']> {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      pool.query('SELECT 1'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true, latencyMs: performance.now() - start };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  } finally {
    if (timer) clearTimeout(timer);
  }
}
