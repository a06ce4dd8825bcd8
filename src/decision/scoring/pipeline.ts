import { getMaxListeners, setMaxListeners } from 'node:events';

/**
 * The scoring pipeline: evaluates a batch of answers with bounded concurrency and hands the results to
 * `commit` in small chunks as they finish, so a batch interrupted anywhere (a worker killed, a timeout)
 * keeps everything committed before it, and the retry starts where the commits stopped. `progress` is
 * called after every commit and on a timer (the activity heartbeats there, which is also how it learns of
 * a cancellation). Judges take seconds; what bounds a batch is wall time and the cost budget, not count.
 */
export interface PipelineOptions<T, R> {
  items: readonly T[];
  /** Evaluations in flight at most. */
  concurrency: number;
  evaluate(item: T, signal: AbortSignal): Promise<R>;
  /** Persists finished results; called with at most `chunkSize` results, one call at a time. */
  commit(results: Array<{ item: T; result: R }>): Promise<void>;
  chunkSize?: number;
  /** A partial chunk is committed at the latest this long after its first result. */
  flushMs?: number;
  /** No new evaluation starts after this (epoch ms); those in flight finish. */
  deadlineMs?: number;
  /** Before each evaluation: false stops starting new ones (e.g. the cost budget is spent). */
  mayStart?(): boolean;
  progress?(p: PipelineProgress): void;
  progressEveryMs?: number;
  signal?: AbortSignal;
  now?: () => number;
}

export interface PipelineProgress {
  started: number;
  committed: number;
  /** Items never started (deadline, budget, cancellation). */
  remaining: number;
}

export async function runPipeline<T, R>(options: PipelineOptions<T, R>): Promise<PipelineProgress> {
  const now = options.now ?? Date.now;
  const chunkSize = Math.max(1, options.chunkSize ?? 8);
  const flushMs = options.flushMs ?? 500;
  const concurrency = Math.max(1, Math.floor(options.concurrency));
  const signal = options.signal ?? new AbortController().signal;
  // Every evaluation in flight listens on the signal (SDK calls, timeouts): that is expected, not a leak.
  setMaxListeners(Math.max(getMaxListeners(signal), concurrency * 4 + 10), signal);
  let next = 0;
  let committed = 0;
  let buffer: Array<{ item: T; result: R }> = [];
  let flushTimer: NodeJS.Timeout | undefined;
  let committing: Promise<void> = Promise.resolve();
  let commitError: unknown;

  const snapshot = (): PipelineProgress => ({
    started: next,
    committed,
    remaining: options.items.length - next,
  });
  const report = () => options.progress?.(snapshot());

  const flush = () => {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = undefined;
    if (buffer.length === 0) return committing;
    const chunk = buffer;
    buffer = [];
    committing = committing.then(async () => {
      if (commitError) return;
      try {
        await options.commit(chunk);
        committed += chunk.length;
        report();
      } catch (err) {
        commitError = err;
      }
    });
    return committing;
  };

  const ticker = setInterval(report, options.progressEveryMs ?? 5_000);
  const canStart = () =>
    next < options.items.length &&
    !signal.aborted &&
    commitError === undefined &&
    (options.deadlineMs === undefined || now() < options.deadlineMs) &&
    (options.mayStart?.() ?? true);

  const lane = async () => {
    while (canStart()) {
      const item = options.items[next++];
      const result = await options.evaluate(item, signal);
      if (signal.aborted) return; // a cancelled attempt commits nothing more: its retry owns the rest
      buffer.push({ item, result });
      if (buffer.length >= chunkSize) void flush();
      else flushTimer ??= setTimeout(() => void flush(), flushMs);
    }
  };

  try {
    await Promise.all(Array.from({ length: concurrency }, lane));
    await flush();
    if (commitError) throw commitError;
    return snapshot();
  } finally {
    clearInterval(ticker);
    if (flushTimer) clearTimeout(flushTimer);
  }
}
