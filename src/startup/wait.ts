/**
 * Waiting for what a process needs at startup (Temporal, Postgres) instead of exiting: in a deployment the
 * pieces start in any order (a worker before the Temporal server, a gateway while Postgres restarts), and a
 * process that exits leaves nothing running when the dependency comes back.
 *
 * Each dependency is tried at once, then again after a capped, jittered backoff (1 s, 2 s, 4 s, 8 s, then every
 * 10 s), with one progress line per failed attempt that says what, where, when next and why:
 *
 *   waiting for Temporal at 127.0.0.1:7233 (attempt 4, next in 8 s): connection refused
 *
 * A `Readiness` records what the process still waits for, for its health endpoints (names and attempt
 * counts only: addresses and error texts go to the progress lines, never to a probe's answer).
 */

export type DependencyName = 'postgres' | 'temporal';

export interface DependencyState {
  ready: boolean;
  /** Attempts so far (0 before the first). */
  attempts: number;
  /** When the process began waiting for it. */
  since: number;
  /** Set once it answered. */
  readyAt?: number;
}

/** What a process waits for, as its health endpoints report it. */
export class Readiness {
  private readonly deps = new Map<DependencyName, DependencyState>();

  constructor(names: DependencyName[]) {
    const now = Date.now();
    for (const name of names) this.deps.set(name, { ready: false, attempts: 0, since: now });
  }

  attempted(name: DependencyName): void {
    const d = this.deps.get(name);
    if (d) d.attempts++;
  }

  ready(name: DependencyName): void {
    const d = this.deps.get(name);
    if (d && !d.ready) {
      d.ready = true;
      d.readyAt = Date.now();
    }
  }

  /** The dependencies not answered yet, in the order given. */
  waitingFor(): DependencyName[] {
    return [...this.deps].filter(([, d]) => !d.ready).map(([name]) => name);
  }

  /** For a health body: per dependency, whether it answered, the attempts and how long it has waited. */
  report(): Record<string, { ready: boolean; attempts: number; waitingSeconds?: number }> {
    const now = Date.now();
    return Object.fromEntries(
      [...this.deps].map(([name, d]) => [
        name,
        d.ready
          ? { ready: true, attempts: d.attempts }
          : { ready: false, attempts: d.attempts, waitingSeconds: Math.round((now - d.since) / 100) / 10 },
      ]),
    );
  }
}

/** A failure that waiting cannot cure (a wrong password, a refused API key): stop and say why. */
export class FatalStartupError extends Error {
  override name = 'FatalStartupError';
}

export interface WaitOptions<T> {
  /** The dependency, for the readiness record. */
  name: DependencyName;
  /** What and where, for the progress lines: "Temporal at 127.0.0.1:7233". */
  what: string;
  /** One try; resolves with the connected thing, or throws why not. */
  attempt: () => Promise<T>;
  /** A short reason for a failed try (default: `describeError`). */
  describe?: (err: unknown) => string;
  /** Errors that end the wait: rethrown at once (default: `FatalStartupError` only). */
  fatal?: (err: unknown) => boolean;
  progress: (line: string) => void;
  readiness?: Readiness;
  /** Aborting stops the wait (its promise rejects with the signal's reason). */
  signal?: AbortSignal;
  /** First retry delay (default 1000 ms); doubles up to `maxDelayMs` (default 10 000 ms). */
  initialDelayMs?: number;
  maxDelayMs?: number;
}

/** Tries `attempt` until it succeeds, sleeping a capped backoff between tries, one progress line per failure. */
export async function waitUntilReady<T>(options: WaitOptions<T>): Promise<T> {
  const { what, progress, readiness, signal } = options;
  const initial = options.initialDelayMs ?? 1_000;
  const max = options.maxDelayMs ?? 10_000;
  const describe = options.describe ?? describeError;
  const fatal = options.fatal ?? ((err: unknown) => err instanceof FatalStartupError);
  const startedAt = Date.now();
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    readiness?.attempted(options.name);
    try {
      const value = await options.attempt();
      readiness?.ready(options.name);
      if (attempt > 1) {
        progress(
          `${what} answered (attempt ${attempt}, after ${formatSeconds(Date.now() - startedAt)} of waiting)`,
        );
      }
      return value;
    } catch (err) {
      if (fatal(err)) throw err;
      signal?.throwIfAborted();
      const base = Math.min(max, initial * 2 ** (attempt - 1));
      // ±10% so that many replicas started together do not retry in step.
      const delay = Math.round(base * (0.9 + Math.random() * 0.2));
      progress(`waiting for ${what} (attempt ${attempt}, next in ${formatSeconds(delay)}): ${describe(err)}`);
      await sleep(delay, signal);
    }
  }
}

/** A connection error in a few words: what a person needs to see, not a stack of wrappers. */
export function describeError(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; cause?: unknown };
  const text = `${typeof e?.code === 'string' ? e.code + ' ' : ''}${String(e?.message ?? err)}`;
  const known: Array<[RegExp, string]> = [
    [/ECONNREFUSED|Connection refused/i, 'connection refused'],
    [/ECONNRESET|Connection terminated unexpectedly|socket hang up/i, 'connection closed by the other end'],
    [/ENOTFOUND|EAI_AGAIN|Name or service not known|dns/i, 'host name not found'],
    [/EHOSTUNREACH|ENETUNREACH/i, 'host unreachable'],
    [/ETIMEDOUT|timeout|timed out|deadline/i, 'no answer in time'],
  ];
  for (const [pattern, words] of known) if (pattern.test(text)) return words;
  const first = String(e?.message ?? err).split('\n')[0];
  return first.length > 200 ? `${first.slice(0, 200)}...` : first;
}

function formatSeconds(ms: number): string {
  return `${Math.max(1, Math.round(ms / 1000))} s`;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', aborted);
      resolve();
    }
    function aborted() {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener('abort', aborted, { once: true });
  });
}
