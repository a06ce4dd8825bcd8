/**
 * Receipts of served stable requests, so feedback for one is accepted even when its event is not a row.
 *
 * Feedback is taken only for a request served to the same key (see feedback.ts), which is checked against
 * the request's event row. But stable events are sampled (`events.stableSampleRate`): a stable request
 * outside the sample is counted in the rollups and leaves no row, and its feedback used to get a 404 as if
 * it had never been served. So the gateway keeps a receipt per stable request it answered: request id →
 * the key's name and when. The bound is a count, not a time: the last `capacity` stable requests this
 * replica served (default 10 000, about 1.3 MB: a 36-character id, a small object and a map entry each),
 * oldest dropped first. Feedback for an older one, or for one another replica served, is checked against
 * the event rows as before, and a 404 says why it may not be found.
 *
 * Such feedback is stored like any other; it is not scored, as its request is not in the sample scoring
 * reads (the sample stands for the stable arm; a rollout loses nothing).
 */
export const DEFAULT_RECEIPTS = 10_000;

export interface Receipt {
  /** The key's name (null with auth disabled). */
  caller: string | null;
  /** `Date.now()` when it was answered. */
  at: number;
}

export class ServedReceipts {
  private readonly receipts = new Map<string, Receipt>();
  /**
   * The ids in the order they came, as a ring: the slot to write next holds the oldest, dropped by key. (Not
   * the map's own order: taking its first key walks over every entry deleted since its last rehash, which
   * cost 20 µs a request at 10 000 receipts.)
   */
  private readonly ring: (string | undefined)[];
  private slot = 0;

  constructor(readonly capacity = DEFAULT_RECEIPTS) {
    if (!(Number.isInteger(capacity) && capacity >= 0))
      throw new Error(`feedback receipts: capacity must be a whole number >= 0, got ${capacity}`);
    this.ring = new Array<string | undefined>(capacity).fill(undefined);
  }

  add(requestId: string, caller: string | null): void {
    if (this.capacity === 0) return;
    const oldest = this.ring[this.slot];
    if (oldest !== undefined) this.receipts.delete(oldest);
    this.ring[this.slot] = requestId;
    this.slot = this.slot + 1 === this.capacity ? 0 : this.slot + 1;
    this.receipts.set(requestId, { caller, at: Date.now() });
  }

  get(requestId: string): Receipt | undefined {
    return this.receipts.get(requestId);
  }

  get size(): number {
    return this.receipts.size;
  }
}
