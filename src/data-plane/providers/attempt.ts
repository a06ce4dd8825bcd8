import type { CallerSignal } from './types';

/**
 * The abort signal of one provider attempt: fires when the per-attempt timeout elapses or when the
 * caller's signal aborts, and remembers which of the two it was (timeout → `timeout`, retryable;
 * caller → `cancelled`, which stops the chain).
 *
 * One AbortController, one timer and at most one listener per attempt; `clear()` must be called when
 * the attempt ends. For streams, `touch()` re-arms the timer: the timeout then bounds the time to the
 * first chunk and every silence between chunks, not the length of the whole answer.
 */
export class AttemptSignal {
  readonly controller = new AbortController();
  timedOut = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly onCallerAbort: (() => void) | undefined;

  constructor(
    readonly timeoutMs: number | undefined,
    private readonly caller: CallerSignal | undefined,
    /** The allowed silence between stream chunks, when it differs from the first-byte timeout. */
    private idleTimeoutMs?: number,
  ) {
    if (timeoutMs !== undefined && timeoutMs > 0 && Number.isFinite(timeoutMs)) {
      this.timer = setTimeout(this.fire, timeoutMs);
    }
    if (caller) {
      if (caller.aborted) this.controller.abort(caller.reason);
      else {
        this.onCallerAbort = () => this.controller.abort(caller.reason);
        caller.addEventListener('abort', this.onCallerAbort, { once: true });
      }
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** True when the caller (not the timeout) aborted. */
  get cancelled(): boolean {
    return !this.timedOut && !!this.caller?.aborted;
  }

  private readonly fire = (): void => {
    this.timedOut = true;
    this.controller.abort(new Error('attempt timed out'));
  };

  touch(): void {
    if (!this.timer) return;
    if (this.idleTimeoutMs !== undefined && this.idleTimeoutMs !== this.timeoutMs) {
      clearTimeout(this.timer);
      this.timer = setTimeout(this.fire, this.idleTimeoutMs);
      this.idleTimeoutMs = undefined;
    } else this.timer.refresh();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.onCallerAbort) this.caller?.removeEventListener('abort', this.onCallerAbort);
  }
}

/** Milliseconds since `start` (a `performance.now()` reading). */
export function since(start: number): number {
  return performance.now() - start;
}
