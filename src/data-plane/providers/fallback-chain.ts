import { logger as defaultLogger, type Logger } from '../../logger';
import { since } from './attempt';
import { isClientCaused, requestedMaxTokens } from './blame';
import { CircuitBreaker, Permit, type BreakerSnapshot, type CircuitBreakerOptions } from './circuit-breaker';
import { ChainExhaustedError, ProviderError, type Attempt } from './errors';
import { normalizeError, type AttemptState } from './normalize-error';
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
 * Overhead: no logging above debug on the hot path; per call one attempts array, one attempt object
 * per target tried, and a copy of the options only when the caller set no timeout.
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

  /**
   * Where the chain goes after target `i` failed with `errorClass`: the next ordinary target, or, for a
   * prompt too long for the target, the next larger-context fallback. -1: nowhere.
   */
  const nextIndex = (targets: readonly Target[], i: number, errorClass: ErrorClass | undefined): number => {
    const wantContext = errorClass === 'context_length';
    for (let j = i + 1; j < targets.length; j++) {
      if ((targets[j].contextFallback === true) === wantContext) return j;
    }
    return -1;
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

  async function complete(
    targets: readonly Target[],
    messages: ChatMessage[],
    callOptions?: CallOptions,
  ): Promise<ChainResult> {
    const attempts: Attempt[] = [];
    const attemptOptions = withTimeout(callOptions);
    let retry = 0;
    for (let i = firstIndex(targets); i >= 0 && i < targets.length;) {
      const target = targets[i];
      const key = keyOf(target);
      if (callOptions?.signal?.aborted)
        throw stop(normalizeError(new Error('cancelled'), key, cancelledAttempt), attempts);
      const permit = breaker ? breaker.acquire(key) : Permit.Normal;
      if (permit === Permit.Denied) {
        attempts.push({
          target: key,
          errorClass: 'circuit_open',
          message: 'circuit open: target skipped',
          latencyMs: 0,
        });
        i = nextIndex(targets, i, 'circuit_open');
        retry = 0;
        continue;
      }
      const start = performance.now();
      let result: CompletionResult;
      try {
        result = await adapterFor(target).complete(target, messages, attemptOptions);
      } catch (thrown) {
        const error = normalizeError(thrown, key);
        attempts.push(attemptOf(error, key, since(start)));
        reportFailure(key, permit, error.errorClass, target, attemptOptions, false);
        if (STOP_CLASSES.has(error.errorClass)) throw stop(error, attempts);
        const delay = retryDelay(error, retry + 1);
        if (delay !== undefined) {
          retry++;
          log.debug({ target: key, errorClass: error.errorClass, delay }, 'retry: same target');
          if (
            await sleep(delay, callOptions?.signal).then(
              () => true,
              () => false,
            )
          )
            continue;
          throw stop(normalizeError(new Error('cancelled'), key, cancelledAttempt), attempts);
        }
        log.debug({ target: key, errorClass: error.errorClass }, 'fallback: attempt failed');
        if (error.errorClass === 'context_length' && nextIndex(targets, i, 'context_length') < 0)
          throw stop(error, attempts);
        i = nextIndex(targets, i, error.errorClass);
        retry = 0;
        continue;
      }
      breaker?.onSuccess(key, permit);
      let verdict = check(result, messages, callOptions);
      if (verdict !== undefined && 'then' in verdict) verdict = await verdict;
      if (verdict !== undefined && !verdict.ok) {
        attempts.push({
          target: key,
          errorClass: 'quality_check',
          message: verdict.reason,
          latencyMs: result.latencyMs,
        });
        log.debug({ target: key, reason: verdict.reason }, 'fallback: quality check failed');
        i = nextIndex(targets, i, 'quality_check');
        retry = 0;
        continue;
      }
      attempts.push({ target: key, latencyMs: result.latencyMs });
      const chainResult = result as ChainResult;
      chainResult.fallbackDepth = i;
      chainResult.attempts = attempts;
      return chainResult;
    }
    throw new ChainExhaustedError(attempts);
  }

  async function* stream(
    targets: readonly Target[],
    messages: ChatMessage[],
    callOptions?: CallOptions,
  ): AsyncGenerator<ChainStreamEvent> {
    const attempts: Attempt[] = [];
    const attemptOptions = withTimeout(callOptions);
    let retry = 0;
    for (let i = firstIndex(targets); i >= 0 && i < targets.length;) {
      const target = targets[i];
      const key = keyOf(target);
      if (callOptions?.signal?.aborted) {
        const error = stop(normalizeError(new Error('cancelled'), key, cancelledAttempt), attempts);
        yield { type: 'error', error, attempts, partial: false };
        return;
      }
      const permit = breaker ? breaker.acquire(key) : Permit.Normal;
      if (permit === Permit.Denied) {
        attempts.push({
          target: key,
          errorClass: 'circuit_open',
          message: 'circuit open: target skipped',
          latencyMs: 0,
        });
        i = nextIndex(targets, i, 'circuit_open');
        retry = 0;
        continue;
      }
      const start = performance.now();
      let yielded = false;
      let settled = false;
      let failedCheck = false;
      try {
        for await (const event of adapterFor(target).stream(target, messages, attemptOptions)) {
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
            attempts.push({
              target: key,
              errorClass: 'quality_check',
              message: verdict.reason,
              latencyMs: result.latencyMs,
            });
            if (!yielded) {
              failedCheck = true;
              break;
            }
            const error = new ProviderError({
              errorClass: 'quality_check',
              target: key,
              message: verdict.reason,
            });
            error.attempts = attempts;
            yield { type: 'error', error, attempts, partial: true };
            return;
          }
          attempts.push({ target: key, latencyMs: result.latencyMs });
          const chainResult = result as ChainResult;
          chainResult.fallbackDepth = i;
          chainResult.attempts = attempts;
          yield event.sseTail === undefined
            ? { type: 'done', result: chainResult }
            : { type: 'done', result: chainResult, sseTail: event.sseTail };
          return;
        }
        if (failedCheck) {
          i = nextIndex(targets, i, 'quality_check');
          retry = 0;
          continue;
        }
        // An adapter whose stream ends without `done` broke its contract: treat as a cut connection.
        throw new ProviderError({
          errorClass: 'connection',
          target: key,
          message: 'stream ended without a result',
        });
      } catch (thrown) {
        const error = normalizeError(thrown, key);
        attempts.push(attemptOf(error, key, since(start)));
        if (!settled) {
          settled = true;
          reportFailure(key, permit, error.errorClass, target, callOptions ?? {}, true);
        }
        const noWhere = error.errorClass === 'context_length' && nextIndex(targets, i, 'context_length') < 0;
        if (yielded || STOP_CLASSES.has(error.errorClass) || noWhere) {
          error.attempts = attempts;
          yield { type: 'error', error, attempts, partial: yielded };
          return;
        }
        const delay = retryDelay(error, retry + 1);
        if (delay !== undefined) {
          retry++;
          log.debug({ target: key, errorClass: error.errorClass, delay }, 'retry: same target (stream)');
          if (
            !(await sleep(delay, callOptions?.signal).then(
              () => true,
              () => false,
            ))
          ) {
            const cancelled = stop(normalizeError(new Error('cancelled'), key, cancelledAttempt), attempts);
            yield { type: 'error', error: cancelled, attempts, partial: false };
            return;
          }
          continue;
        }
        log.debug({ target: key, errorClass: error.errorClass }, 'fallback: stream attempt failed');
        i = nextIndex(targets, i, error.errorClass);
        retry = 0;
      } finally {
        // The consumer stopped reading mid-stream: no verdict on the target, hand the permit back.
        if (!settled && breaker) breaker.release(key, permit);
      }
    }
    const error = new ChainExhaustedError(attempts);
    yield { type: 'error', error, attempts, partial: false };
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

/** The first ordinary target (larger-context fallbacks wait for a `context_length` refusal). */
function firstIndex(targets: readonly Target[]): number {
  for (let i = 0; i < targets.length; i++) if (targets[i].contextFallback !== true) return i;
  return targets.length > 0 ? 0 : -1;
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

/** Signals a caller cancellation to `normalizeError` (it checks `cancelled` before anything else). */
const cancelledAttempt: AttemptState = { timedOut: false, cancelled: true };

function checkThrew(error: unknown): QualityVerdict {
  return {
    ok: false,
    reason: `quality check threw: ${error instanceof Error ? error.message : String(error)}`,
  };
}

function stop(error: ProviderError, attempts: Attempt[]): ProviderError {
  error.attempts = attempts;
  return error;
}

function attemptOf(error: ProviderError, key: string, latencyMs: number): Attempt {
  const attempt: Attempt = { target: key, errorClass: error.errorClass, message: error.detail, latencyMs };
  if (error.status !== undefined) attempt.status = error.status;
  if (error.retryAfterMs !== undefined) attempt.retryAfterMs = error.retryAfterMs;
  return attempt;
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
