import { logger as defaultLogger, type Logger } from '../../logger';
import { isClientCaused, requestedMaxTokens } from './blame';
import { ChainWalk, type WalkRules } from './chain-walk';
import { CircuitBreaker, Permit, type BreakerSnapshot, type CircuitBreakerOptions } from './circuit-breaker';
import { ChainExhaustedError, ProviderError, type Attempt } from './errors';
import { normalizeError } from './normalize-error';
import { targetKey } from './openai-wire';
import { createProviderAdapter, type OpenAICompatibleTransport } from './provider-adapter';
import { defaultQualityCheck, type QualityCheck, type QualityVerdict } from './quality-check';
import type { ProviderRegistry } from './registry';
import type {
  CallerSignal,
  CallOptions,
  ChatMessage,
  CompletionResult,
  ErrorClass,
  ProviderAdapter,
  Target,
} from './types';

/**
 * The multi-provider fallback chain: try each target in order until one gives an answer that passes
 * the quality check.
 *
 * Per target, the outcome decides what happens next:
 * - success and the quality check passes → return it (`fallbackDepth` = its index in the list);
 * - a retryable error (rate_limited, overloaded, server_error, timeout, connection, malformed_response)
 *   or a failed quality check → next target;
 * - `auth`, `permission`, `not_found` → next target. They are not retryable on the same target, but
 *   they are properties of that target (a missing or revoked key for one provider, a model one provider
 *   does not serve), not of the request, so another provider may well answer;
 * - `bad_request`, `content_policy` → stop at once: they are properties of the request (malformed
 *   input, context too long, content refused) that every target would refuse too, and sending content
 *   one provider refused on policy grounds on to the next is not a decision the chain should make;
 * - `cancelled` (the caller's signal) → stop at once;
 * - an open circuit → skip without calling (recorded as a `circuit_open` attempt);
 * - with `retry`, an error a second try may cure (429, overload, 5xx, connection) first retries the
 *   same target after a capped, jittered backoff that honours `retry-after` (see `RetryOptions`);
 * - `context_length` (the prompt is over the target's window) → the next target marked
 *   `contextFallback` (a larger-context model), which ordinary failures skip; none left → stop.
 * When every target fails: `ChainExhaustedError` listing every attempt.
 *
 * Streams fall back only until the first delta has been yielded to the caller. After that, a failure
 * is yielded as an explicit `{ type: 'error' }` event (never a silent, truncated "success"), and the
 * stream ends. All failures of `stream()` are events, never throws, so a gateway has one code path.
 *
 * `complete` and `stream` share one walk along the targets (chain-walk.ts: next target, retries, what a
 * failure leads to, the attempts list); they differ only in how a target is called and how the end is
 * reported (a throw, or an error event).
 *
 * Overhead: no logging above debug on the hot path; per call one walk, one attempts array, one attempt
 * object per target tried, and a copy of the options only when the caller set no timeout.
 */
/**
 * The answering adapter's own result object, annotated in place (no copy on the hot path). It carries
 * what a caller needs of the answer: the target that answered (`target`) and, when the call asked with
 * `keepBytes`, the upstream's bytes (`upstream`).
 */
export interface ChainResult extends CompletionResult {
  /** Index in the target list of the target that answered: 0 = primary. */
  fallbackDepth: number;
  /** Every target tried or skipped, in order; the last one is the success. */
  attempts: Attempt[];
}

export type ChainStreamEvent =
  /** `target`: the `provider:model` streaming this delta (a stream may fall back before its first one). */
  | { type: 'delta'; text: string; target: string; sse?: string }
  | { type: 'done'; result: ChainResult; sseTail?: string }
  | {
      type: 'error';
      error: ProviderError;
      attempts: Attempt[];
      /** True when deltas were already yielded: the caller holds a partial answer it must discard. */
      partial: boolean;
    };

export interface FallbackChainOptions {
  /** Providers to build adapters from (Anthropic SDK + OpenAI-compatible `transport`). */
  registry?: ProviderRegistry;
  /** OpenAI-compatible transport when building from `registry`: 'lean' (default) or 'sdk'. */
  transport?: OpenAICompatibleTransport;
  /** One adapter for every target (instead of building from `registry`). */
  adapter?: ProviderAdapter;
  /** Per-provider adapters; take precedence over `adapter` / `registry`. */
  adapters?: Record<string, ProviderAdapter>;
  /** Breaker settings, a shared breaker instance, or false for none. */
  breaker?: CircuitBreakerOptions | CircuitBreaker | false;
  /** Default `defaultQualityCheck`; false disables checking. */
  qualityCheck?: QualityCheck | false;
  /** Timeout of each attempt when the call sets none. Default 30 000 ms. */
  perAttemptTimeoutMs?: number;
  /** Retries of the same target before moving on (default none). */
  retry?: RetryOptions;
  logger?: Logger;
  /** Waits between retries (tests and benches may pass a faster clock). Default `setTimeout`. */
  sleep?: (ms: number, signal?: CallerSignal) => Promise<void>;
}

/**
 * Retries of one target, before the chain moves to the next: only for errors a second try of the same
 * target can cure (429, overload, 5xx, a dropped connection), after a jittered exponential backoff or the
 * provider's `retry-after` when it gave one, capped by `maxDelayMs` (a longer wait goes to the next target
 * at once instead). A stream is retried only before its first delta.
 */
export interface RetryOptions {
  /** Retries per target (0 = none). */
  maxRetries: number;
  /** First backoff; doubled per retry, with full jitter. Default 200 ms. */
  baseDelayMs?: number;
  /** Longest wait, `retry-after` included; a provider asking for longer is not retried. Default 5 000 ms. */
  maxDelayMs?: number;
}

/** Classes a second try of the same target may cure. */
const SAME_TARGET_RETRY: ReadonlySet<ErrorClass> = new Set<ErrorClass>([
  'rate_limited',
  'overloaded',
  'server_error',
  'connection',
]);

export interface FallbackChain {
  complete(targets: readonly Target[], messages: ChatMessage[], options?: CallOptions): Promise<ChainResult>;
  stream(
    targets: readonly Target[],
    messages: ChatMessage[],
    options?: CallOptions,
  ): AsyncIterable<ChainStreamEvent>;
  breakerStates(): BreakerSnapshot[];
  readonly breaker: CircuitBreaker | undefined;
  /** Releases pooled connections of adapters the chain built itself. */
  close(): Promise<void>;
}

const NO_OPTIONS: CallOptions = Object.freeze({});

/** Classes that end the chain: they belong to the request, not to the target. */
const STOP_CLASSES: ReadonlySet<ErrorClass> = new Set<ErrorClass>([
  'bad_request',
  'content_policy',
  'cancelled',
]);
/** Classes that say nothing about the target's health: they release a breaker permit without a verdict. */
const NEUTRAL_CLASSES: ReadonlySet<ErrorClass> = new Set<ErrorClass>([
  'bad_request',
  'content_policy',
  'cancelled',
  'context_length',
]);

export function createFallbackChain(options: FallbackChainOptions): FallbackChain {
  const log = options.logger ?? defaultLogger;
  const maxRetries = Math.max(0, Math.floor(options.retry?.maxRetries ?? 0));
  const baseDelayMs = options.retry?.baseDelayMs ?? 200;
  const maxDelayMs = options.retry?.maxDelayMs ?? 5_000;
  const sleep = options.sleep ?? abortableSleep;

  /** The wait before retry number `retry` (1-based), or undefined when this error is not retried. */
  const retryDelay = (error: ProviderError, retry: number): number | undefined => {
    if (retry > maxRetries || !SAME_TARGET_RETRY.has(error.errorClass)) return undefined;
    if (error.retryAfterMs !== undefined)
      return error.retryAfterMs <= maxDelayMs ? error.retryAfterMs : undefined;
    return Math.min(maxDelayMs, Math.random() * baseDelayMs * 2 ** (retry - 1));
  };

  const perAttemptTimeoutMs = options.perAttemptTimeoutMs ?? 30_000;
  const qualityCheck =
    options.qualityCheck === false ? undefined : (options.qualityCheck ?? defaultQualityCheck);
  const breakerOptions = options.breaker instanceof CircuitBreaker ? undefined : options.breaker || undefined;
  const breaker =
    options.breaker === false
      ? undefined
      : options.breaker instanceof CircuitBreaker
        ? options.breaker
        : new CircuitBreaker({
            ...breakerOptions,
            onStateChange: (target, from, to) => {
              breakerOptions?.onStateChange?.(target, from, to);
              if (to === 'open') log.warn({ target, from, to }, 'circuit opened');
              else log.info({ target, from, to }, 'circuit state changed');
            },
          });

  let built: ReturnType<typeof createProviderAdapter> | undefined;
  let fallbackAdapter = options.adapter;
  if (!fallbackAdapter && options.registry) {
    built = createProviderAdapter({
      registry: options.registry,
      transport: options.transport,
      defaultTimeoutMs: perAttemptTimeoutMs,
    });
    fallbackAdapter = built;
  }
  const perProvider = options.adapters;
  if (!fallbackAdapter && !perProvider)
    throw new Error('createFallbackChain needs a registry, an adapter or adapters');

  const adapterFor = (target: Target): ProviderAdapter => {
    const adapter = (perProvider && perProvider[target.provider]) || fallbackAdapter;
    if (!adapter) {
      throw new ProviderError({
        errorClass: 'not_found',
        target: keyOf(target),
        message: `no adapter for provider "${target.provider}"`,
        retryable: false,
      });
    }
    return adapter;
  };

  const withTimeout = (callOptions: CallOptions | undefined): CallOptions =>
    callOptions?.timeoutMs !== undefined ? callOptions : { ...callOptions, timeoutMs: perAttemptTimeoutMs };

  /** A failure the request caused (see blame.ts) or one that says nothing about health hands the permit back. */
  const reportFailure = (
    key: string,
    permit: Permit,
    errorClass: ErrorClass,
    target: Target,
    options: CallOptions,
    stream: boolean,
  ): void => {
    if (!breaker) return;
    const clientCaused = isClientCaused(errorClass, {
      stream,
      maxTokens: requestedMaxTokens(options, target),
      timeoutMs: options.timeoutMs,
    });
    if (clientCaused || NEUTRAL_CLASSES.has(errorClass)) breaker.release(key, permit);
    else breaker.onFailure(key, permit);
  };

  /** The quality verdict; a check that throws counts as a failed check (it must not end the chain). */
  const check = (
    result: CompletionResult,
    messages: ChatMessage[],
    callOptions: CallOptions | undefined,
  ): QualityVerdict | Promise<QualityVerdict> | undefined => {
    if (!qualityCheck) return undefined;
    try {
      const verdict = qualityCheck(result, { messages, options: callOptions });
      return 'then' in verdict ? verdict.catch(checkThrew) : verdict;
    } catch (error) {
      return checkThrew(error);
    }
  };

  // One per chain: a call allocates only its walk.
  const rules: WalkRules = {
    breaker,
    retryDelay,
    sleep,
    stopClasses: STOP_CLASSES,
    reportFailure: (t, errorClass, callOptions, stream) =>
      reportFailure(t.key, t.permit, errorClass, t.target, callOptions, stream),
    log,
    keyOf,
  };

  async function complete(
    targets: readonly Target[],
    messages: ChatMessage[],
    callOptions?: CallOptions,
  ): Promise<ChainResult> {
    const attemptOptions = withTimeout(callOptions);
    const walk = new ChainWalk(targets, rules, attemptOptions, false);
    for (let t = walk.next(); t !== undefined; t = walk.next()) {
      if (t instanceof ProviderError) throw t;
      let result: CompletionResult;
      try {
        result = await adapterFor(t.target).complete(t.target, messages, attemptOptions);
      } catch (thrown) {
        const error = normalizeError(thrown, t.key);
        const step = await walk.failed(t, error, false, true);
        if (step === 'stop') throw error;
        if (step === 'cancelled') throw walk.cancelled(t.key);
        continue;
      }
      breaker?.onSuccess(t.key, t.permit);
      let verdict = check(result, messages, callOptions);
      if (verdict !== undefined && 'then' in verdict) verdict = await verdict;
      if (verdict !== undefined && !verdict.ok) {
        walk.checkFailed(t, verdict.reason, result.latencyMs);
        continue;
      }
      walk.succeeded(t, result.latencyMs);
      const chainResult = result as ChainResult;
      chainResult.fallbackDepth = t.index;
      chainResult.attempts = walk.attempts;
      return chainResult;
    }
    throw new ChainExhaustedError(walk.attempts);
  }

  async function* stream(
    targets: readonly Target[],
    messages: ChatMessage[],
    callOptions?: CallOptions,
  ): AsyncGenerator<ChainStreamEvent> {
    const attemptOptions = withTimeout(callOptions);
    // (The breaker hears about stream failures with the caller's options, as it always has.)
    const walk = new ChainWalk(targets, rules, callOptions ?? NO_OPTIONS, true);
    for (let t = walk.next(); t !== undefined; t = walk.next()) {
      if (t instanceof ProviderError) {
        yield { type: 'error', error: t, attempts: walk.attempts, partial: false };
        return;
      }
      const { key, permit } = t;
      let yielded = false;
      let settled = false;
      let failedCheck = false;
      try {
        for await (const event of adapterFor(t.target).stream(t.target, messages, attemptOptions)) {
          if (event.type === 'delta') {
            yielded = true;
            yield { type: 'delta', text: event.text, target: key, sse: event.sse };
            continue;
          }
          settled = true;
          breaker?.onSuccess(key, permit);
          const result = event.result;
          let verdict = check(result, messages, callOptions);
          if (verdict !== undefined && 'then' in verdict) verdict = await verdict;
          if (verdict !== undefined && !verdict.ok) {
            if (!yielded) {
              walk.checkFailed(t, verdict.reason, result.latencyMs);
              failedCheck = true;
              break;
            }
            // Deltas are out: the stream ends with the check's failure (never a silent, cut "success").
            const error = new ProviderError({
              errorClass: 'quality_check',
              target: key,
              message: verdict.reason,
            });
            walk.attempts.push({
              target: key,
              errorClass: 'quality_check',
              message: verdict.reason,
              latencyMs: result.latencyMs,
            });
            walk.end(error);
            yield { type: 'error', error, attempts: walk.attempts, partial: true };
            return;
          }
          walk.succeeded(t, result.latencyMs);
          const chainResult = result as ChainResult;
          chainResult.fallbackDepth = t.index;
          chainResult.attempts = walk.attempts;
          yield event.sseTail === undefined
            ? { type: 'done', result: chainResult }
            : { type: 'done', result: chainResult, sseTail: event.sseTail };
          return;
        }
        if (failedCheck) continue;
        // An adapter whose stream ends without `done` broke its contract: treat as a cut connection.
        throw new ProviderError({
          errorClass: 'connection',
          target: key,
          message: 'stream ended without a result',
        });
      } catch (thrown) {
        const error = normalizeError(thrown, key);
        const report = !settled;
        settled = true;
        const step = await walk.failed(t, error, yielded, report);
        if (step === 'stop') {
          yield { type: 'error', error, attempts: walk.attempts, partial: yielded };
          return;
        }
        if (step === 'cancelled') {
          yield { type: 'error', error: walk.cancelled(key), attempts: walk.attempts, partial: false };
          return;
        }
      } finally {
        // The consumer stopped reading mid-stream: no verdict on the target, hand the permit back.
        if (!settled && breaker) breaker.release(key, permit);
      }
    }
    yield {
      type: 'error',
      error: new ChainExhaustedError(walk.attempts),
      attempts: walk.attempts,
      partial: false,
    };
  }

  return {
    complete,
    stream,
    breaker,
    breakerStates: () => breaker?.snapshots() ?? [],
    async close() {
      await built?.close();
    },
  };
}

/** Resolves after `ms`, rejects when `signal` aborts first. */
function abortableSleep(ms: number, signal?: CallerSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('cancelled'));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error('cancelled'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function checkThrew(error: unknown): QualityVerdict {
  return {
    ok: false,
    reason: `quality check threw: ${error instanceof Error ? error.message : String(error)}`,
  };
}

const keys = new WeakMap<Target, string>();

/** `provider:model`, cached per target object (targets from routing state are long-lived). */
export function keyOf(target: Target): string {
  let key = keys.get(target);
  if (key === undefined) {
    key = targetKey(target);
    keys.set(target, key);
  }
  return key;
}
