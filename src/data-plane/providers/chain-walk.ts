import type { Logger } from '../../logger';
import { since } from './attempt';
import { Permit, type CircuitBreaker } from './circuit-breaker';
import { ProviderError, type Attempt } from './errors';
import { normalizeError, type AttemptState } from './normalize-error';
import type { CallerSignal, CallOptions, ErrorClass, Target } from './types';

/**
 * The walk along a fallback chain's targets, shared by `complete` and `stream` (fallback-chain.ts): which
 * target is tried next (larger-context fallbacks only after a `context_length` refusal, open circuits
 * skipped and recorded), what a failure leads to (a retry of the same target after its backoff, the next
 * target, or the end of the chain) and the attempts list. The two callers differ only in how they call a
 * target and report the end (a throw, or an error event).
 */
export interface Try {
  target: Target;
  key: string;
  permit: Permit;
  /** Index in the target list (the result's `fallbackDepth`). */
  index: number;
  /** `performance.now()` when the try began. */
  start: number;
}

export type Step = 'again' | 'next' | 'stop' | 'cancelled';

export interface WalkRules {
  breaker: CircuitBreaker | undefined;
  /** The wait before retry number `retry` (1-based), or undefined when this error is not retried. */
  retryDelay(error: ProviderError, retry: number): number | undefined;
  sleep(ms: number, signal?: CallerSignal): Promise<void>;
  /** Classes that end the chain (they belong to the request). */
  stopClasses: ReadonlySet<ErrorClass>;
  /** Hands the breaker permit back or counts the failure (see fallback-chain.ts `reportFailure`). */
  reportFailure(t: Try, errorClass: ErrorClass, options: CallOptions, stream: boolean): void;
  log: Logger;
  keyOf(target: Target): string;
}

/** Signals a caller cancellation to `normalizeError` (it checks `cancelled` before anything else). */
const cancelledAttempt: AttemptState = { timedOut: false, cancelled: true };

export class ChainWalk {
  readonly attempts: Attempt[] = [];
  private index: number;
  private retry = 0;

  constructor(
    private readonly targets: readonly Target[],
    private readonly rules: WalkRules,
    /** The options a failure is judged with (blame.ts: the request's max_tokens and timeout). */
    private readonly options: CallOptions,
    private readonly stream: boolean,
  ) {
    this.index = firstIndex(targets);
  }

  /**
   * The next try; a `ProviderError` (cancelled, attempts attached) when the caller has gone; undefined
   * when no target is left.
   */
  next(): Try | ProviderError | undefined {
    const { targets, rules } = this;
    while (this.index >= 0 && this.index < targets.length) {
      const target = targets[this.index];
      const key = rules.keyOf(target);
      if (this.options.signal?.aborted) return this.cancelled(key);
      const permit = rules.breaker ? rules.breaker.acquire(key) : Permit.Normal;
      if (permit === Permit.Denied) {
        this.attempts.push({
          target: key,
          errorClass: 'circuit_open',
          message: 'circuit open: target skipped',
          latencyMs: 0,
        });
        this.moveOn('circuit_open');
        continue;
      }
      return { target, key, permit, index: this.index, start: performance.now() };
    }
    return undefined;
  }

  /**
   * A try failed with `error`: records it and says what comes next, after waiting out a retry's backoff.
   * `partial`: the caller already has part of this try's answer (a stream's deltas): nothing can follow.
   * `report`: whether the breaker is still to hear about this try.
   */
  async failed(t: Try, error: ProviderError, partial: boolean, report: boolean): Promise<Step> {
    const { rules } = this;
    this.attempts.push(attemptOf(error, t.key, since(t.start)));
    if (report) rules.reportFailure(t, error.errorClass, this.options, this.stream);
    const nowhere = error.errorClass === 'context_length' && this.indexAfter(t.index, 'context_length') < 0;
    if (partial || rules.stopClasses.has(error.errorClass) || nowhere) return this.end(error);
    const delay = rules.retryDelay(error, this.retry + 1);
    if (delay !== undefined) {
      this.retry++;
      rules.log.debug({ target: t.key, errorClass: error.errorClass, delay }, 'retry: same target');
      const slept = await rules.sleep(delay, this.options.signal).then(
        () => true,
        () => false,
      );
      return slept ? 'again' : 'cancelled';
    }
    rules.log.debug({ target: t.key, errorClass: error.errorClass }, 'fallback: attempt failed');
    this.moveOn(error.errorClass);
    return 'next';
  }

  /** The try answered but its answer failed the quality check: recorded, and the walk moves on. */
  checkFailed(t: Try, reason: string, latencyMs: number): void {
    this.attempts.push({ target: t.key, errorClass: 'quality_check', message: reason, latencyMs });
    this.rules.log.debug({ target: t.key, reason }, 'fallback: quality check failed');
    this.moveOn('quality_check');
  }

  /** The try answered: recorded; the answering target's index is `t.index`. */
  succeeded(t: Try, latencyMs: number): void {
    this.attempts.push({ target: t.key, latencyMs });
  }

  /** `error` with the attempts so far: what ends the chain. */
  end(error: ProviderError): 'stop' {
    error.attempts = this.attempts;
    return 'stop';
  }

  /** The cancellation error for `key`, attempts attached. */
  cancelled(key: string): ProviderError {
    const error = normalizeError(new Error('cancelled'), key, cancelledAttempt);
    error.attempts = this.attempts;
    return error;
  }

  private moveOn(errorClass: ErrorClass): void {
    this.index = this.indexAfter(this.index, errorClass);
    this.retry = 0;
  }

  /**
   * Where the chain goes after target `i` failed with `errorClass`: the next ordinary target, or, for a
   * prompt too long for the target, the next larger-context fallback. -1: nowhere.
   */
  private indexAfter(i: number, errorClass: ErrorClass): number {
    const wantContext = errorClass === 'context_length';
    for (let j = i + 1; j < this.targets.length; j++) {
      if ((this.targets[j].contextFallback === true) === wantContext) return j;
    }
    return -1;
  }
}

/** The first ordinary target (larger-context fallbacks wait for a `context_length` refusal). */
function firstIndex(targets: readonly Target[]): number {
  for (let i = 0; i < targets.length; i++) if (targets[i].contextFallback !== true) return i;
  return targets.length > 0 ? 0 : -1;
}

function attemptOf(error: ProviderError, key: string, latencyMs: number): Attempt {
  const attempt: Attempt = { target: key, errorClass: error.errorClass, message: error.detail, latencyMs };
  if (error.status !== undefined) attempt.status = error.status;
  if (error.retryAfterMs !== undefined) attempt.retryAfterMs = error.retryAfterMs;
  return attempt;
}
