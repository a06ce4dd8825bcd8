import pg from 'pg';
import { logger } from '../logger';
import { ensureEmbeddedPostgres, refuseEmbeddedInProduction } from './embedded-postgres';

/**
 * A Postgres connection for the whole process: the server at `DATABASE_URL` when it is set, otherwise the
 * checkout's embedded PostgreSQL (`embedded-postgres.ts`), started on first use and shared by every process.
 */
export interface Database {
  pool: pg.Pool;
  /** Connection string, safe to print (passwords masked). */
  url: string;
  embedded: boolean;
  /** True when this process started the embedded server (it found none running). */
  startedEmbedded?: boolean;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  url?: string;
  /** Folder of the embedded server (default `.data/postgres`). */
  embeddedRoot?: string;
  /** Port of the embedded server (default `MODEL_ROLLOUT_PG_PORT` or 54329). */
  embeddedPort?: number;
  poolSize?: number;
  /** Progress lines while the embedded server is created or started. */
  progress?: (message: string) => void;
}

export async function openDatabase(options: OpenDatabaseOptions = {}): Promise<Database> {
  const url = options.url === undefined ? process.env.DATABASE_URL : options.url;
  if (url) return connect(url, false, options.poolSize);
  // Before anything is created: production names its database (the embedded one runs with fsync off).
  refuseEmbeddedInProduction();
  // Progress goes to stderr: a command's stdout (say, `--json`) stays clean.
  const progress = options.progress ?? ((m: string) => process.stderr.write(`${m}\n`));
  const server = await ensureEmbeddedPostgres({
    root: options.embeddedRoot,
    port: options.embeddedPort,
    progress,
  });
  if (server.started) {
    progress(
      `embedded Postgres started at ${server.url} (data in ${server.root}; stop it with \`model-rollout db stop\`)`,
    );
  }
  return { ...connect(server.connectionString, true, options.poolSize), startedEmbedded: server.started };
}

function connect(url: string, embedded: boolean, poolSize = 10): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    // A Postgres that stops answering (a failover, a dropped network path) must surface as errors that the
    // callers retry or report, never as calls that wait forever.
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    statement_timeout: 60_000,
    // The server enforces statement_timeout only while it can still answer; past it, the client gives up
    // itself, and the pool drops the connection instead of lending it out again.
    query_timeout: 65_000,
    idle_in_transaction_session_timeout: 60_000,
    // No JIT: compiling a query's expressions takes 50-200 ms, worth it for long analytics, never for these
    // millisecond queries (a decision's read of the rollups, 202 histogram sums, ran 3 ms and compiled 200 ms
    // once the tables were large enough for the planner to call JIT).
    options: '-c jit=off',
  });
  attachPoolErrorLogger(pool);
  return { pool, url: redactUrl(url), embedded, close: () => pool.end() };
}

function attachPoolErrorLogger(pool: pg.Pool): void {
  // An idle client losing its connection must not crash the process: callers see errors on their queries.
  pool.on('error', (err) => logger.warn({ err: err.message }, 'postgres idle client error'));
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable DATABASE_URL>';
  }
}

export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
