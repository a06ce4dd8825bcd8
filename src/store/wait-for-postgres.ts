import type { Database } from './database';
import { FatalStartupError, describeError, waitUntilReady, type Readiness } from '../startup/wait';

/**
 * Waits until Postgres answers, then runs `then` (migrations, a first read) as part of the same attempt, so a
 * server that goes away again in between is waited for too. A wrong password or a refused role ends the wait
 * (it would never cure itself); so does an SQL error of `then` that is not about the connection (a broken
 * migration must stop the process, not loop).
 */
export async function waitForPostgres<T>(
  db: Database,
  then: () => Promise<T>,
  options: { progress: (line: string) => void; readiness?: Readiness; signal?: AbortSignal },
): Promise<T> {
  return waitUntilReady({
    name: 'postgres',
    what: `Postgres at ${postgresAddress(db.url)}`,
    attempt: then,
    fatal: isPermanentPostgresError,
    describe: describePostgresError,
    progress: options.progress,
    readiness: options.readiness,
    signal: options.signal,
  });
}

/** host:port/database of a (redacted) URL: never a user or password. */
export function postgresAddress(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}${u.pathname.length > 1 ? u.pathname : ''}`;
  } catch {
    return 'DATABASE_URL';
  }
}

/** SQLSTATEs a server that is starting, restarting, full or not yet set up answers with: worth waiting for. */
const TRANSIENT = /^(08...|57P0[123]|53300|53400|3D000)$/;

function isPermanentPostgresError(err: unknown): boolean {
  if (err instanceof FatalStartupError) return true;
  const code = (err as { code?: unknown })?.code;
  // Network errors carry Node's codes (ECONNREFUSED, ...); SQLSTATEs are five characters.
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return false;
  return !TRANSIENT.test(code);
}

function describePostgresError(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  if (e?.code === '3D000') return `${String(e.message)} (yet)`;
  if (e?.code === '57P03') return 'the database system is starting up';
  return describeError(err);
}
