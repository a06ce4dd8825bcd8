import type { ServerResponse } from 'node:http';
import type { CallerSignal } from '../providers';

/**
 * Fires when the client hangs up before its response is complete, so the upstream call is aborted (no
 * tokens paid for an answer nobody reads) and recorded as `cancelled`, never as the model's error.
 *
 * A `CallerSignal` rather than an AbortController: one per request on the hot path, and an AbortSignal's
 * EventTarget listeners cost several µs to add and remove; this is a field and an array.
 */
export class ClientGone implements CallerSignal {
  aborted = false;
  reason: unknown = undefined;
  private listeners: (() => void)[] | undefined;

  constructor(private readonly res: ServerResponse) {
    res.once('close', this.onClose);
  }

  private readonly onClose = (): void => {
    if (this.res.writableEnded || this.aborted) return;
    this.aborted = true;
    this.reason = new Error('client closed the connection');
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners) for (const listener of listeners) listener();
  };

  addEventListener(_type: 'abort', listener: () => void): void {
    (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners?.indexOf(listener) ?? -1;
    if (i >= 0) this.listeners!.splice(i, 1);
  }

  /** The response is done: stop watching. */
  done(): void {
    this.res.off('close', this.onClose);
  }
}
