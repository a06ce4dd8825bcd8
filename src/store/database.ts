import path from 'node:path';
import fs from 'node:fs';
import pg from 'pg';
import { logger } from '../logger';

/**
 * A Postgres connection for the whole process: the machine's server when `DATABASE_URL` is set, otherwise
 * an embedded PGlite served over the Postgres wire protocol so that the very same `pg` code runs on it.
 */
export interface Database {
  pool: pg.Pool;
  /** Connection string, safe to print (the embedded one has no password). */
  url: string;
  embedded: boolean;
  /** PGlite's socket server does not deliver LISTEN/NOTIFY across connections: routers poll there. */
  supportsNotify: boolean;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  url?: string;
  /** Folder for the embedded database's files (default `.data/pglite`). */
  dataDir?: string;
  /** Port for the embedded server (default: a free one). */
  embeddedPort?: number;
  poolSize?: number;
}

export async function openDatabase(options: OpenDatabaseOptions = {}): Promise<Database> {
  const url = options.url === undefined ? process.env.DATABASE_URL : options.url;
  if (url) {
    const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10 });
    attachPoolErrorLogger(pool);
    return { pool, url: redactUrl(url), embedded: false, supportsNotify: true, close: () => pool.end() };
  }
  return openEmbedded(options);
}

async function openEmbedded(options: OpenDatabaseOptions): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const dataDir = path.resolve(options.dataDir ?? path.join(process.cwd(), '.data', 'pglite'));
  fs.mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir);
  const port = options.embeddedPort ?? (await freePort());
  const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1', maxConnections: 64 });
  await server.start();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  // PGlite runs one query at a time; a small pool avoids queueing many idle connections on it.
  const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 4 });
  attachPoolErrorLogger(pool);
  logger.debug({ dataDir, url }, 'embedded Postgres (PGlite) started');
  return {
    pool,
    url,
    embedded: true,
    supportsNotify: false,
    async close() {
      await pool.end();
      await server.stop();
      await db.close();
    },
  };
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
