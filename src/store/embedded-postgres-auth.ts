import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';

/**
 * Who may open the embedded PostgreSQL: the processes that can read the checkout's password file, no one else.
 *
 * The server listens on 127.0.0.1, which every local user reaches, and its only role is the superuser
 * `postgres` (captured prompts, routes, `COPY ... TO PROGRAM`). So the cluster requires SCRAM-SHA-256 for every
 * connection, with a generated password kept in `<root>/password` (mode 0600, in a folder of mode 0700):
 * the checkout's own processes read it, other users cannot. The server only ever sees the SCRAM verifier,
 * never the password. A cluster an older checkout made with `--auth=trust` is upgraded in place the first
 * time a process of this version opens it (a password is set and pg_hba.conf asks for it).
 */
export class EmbeddedPostgresError extends Error {
  override name = 'EmbeddedPostgresError';
}

const PRODUCTION = 'production';

/**
 * The embedded server runs with fsync off, in the checkout: it is for one developer's machine. A deployment
 * that says it is production (`NODE_ENV` or `MODEL_ROLLOUT_ENV`) must name its database.
 */
export function refuseEmbeddedInProduction(env: NodeJS.ProcessEnv = process.env): void {
  const by = (['MODEL_ROLLOUT_ENV', 'NODE_ENV'] as const).find(
    (name) => env[name]?.trim().toLowerCase() === PRODUCTION,
  );
  if (!by) return;
  throw new EmbeddedPostgresError(
    `DATABASE_URL is not set, and ${by}=${env[by]} says this is a production deployment: the embedded ` +
      `PostgreSQL (fsync off, data inside the checkout) never serves one. Set DATABASE_URL to your ` +
      `PostgreSQL server (postgres://user:password@host:5432/database).`,
  );
}

export const passwordPath = (root: string) => path.join(root, 'password');

/** The checkout's password, or undefined when there is none (a new cluster, or one made before passwords). */
export function readPassword(root: string): string | undefined {
  const file = passwordPath(root);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new EmbeddedPostgresError(
      `cannot read the embedded Postgres password file ${file} (${(err as NodeJS.ErrnoException).code}): ` +
        `run this as the user that created .data/postgres, or set DATABASE_URL`,
    );
  }
  // A copy made with a loose umask (or by hand) is tightened: only its owner may read it.
  const mode = fs.statSync(file).mode & 0o777;
  if (mode & 0o077) fs.chmodSync(file, 0o600);
  return text || undefined;
}

/** A new random password in a 0600 file (written whole, then renamed into place). */
export function createPassword(root: string): string {
  const password = crypto.randomBytes(32).toString('base64url');
  const file = passwordPath(root);
  const tmp = `${file}.${process.pid}`;
  fs.writeFileSync(tmp, `${password}\n`, { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
  return password;
}

/** The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802 / 7677, PostgreSQL's text form). */
export function scramVerifier(password: string, salt = crypto.randomBytes(16), iterations = 4096): string {
  const salted = crypto.pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = crypto.createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = crypto.createHash('sha256').update(clientKey).digest();
  const serverKey = crypto.createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** The URL to connect with: the server's (printable, no password) plus the password. Never print it. */
export function withPassword(url: string, password: string | undefined): string {
  if (!password) return url;
  const parsed = new URL(url);
  parsed.password = password;
  return parsed.toString();
}

const HBA_METHOD_LINE = /^\s*(local|host|hostssl|hostnossl|hostgssenc|hostnogssenc)\s/;

/** True when pg_hba.conf lets some connection in without a password (a cluster made before passwords). */
export function trustsConnections(pgdata: string): boolean {
  let text: string;
  try {
    text = fs.readFileSync(path.join(pgdata, 'pg_hba.conf'), 'utf8');
  } catch {
    return false; // no cluster yet
  }
  return text.split('\n').some((line) => HBA_METHOD_LINE.test(line) && /\btrust\b/.test(line));
}

/**
 * Upgrades a running trust cluster: sets the postgres role's password (as a SCRAM verifier), makes every
 * pg_hba.conf rule ask for it, reloads, and checks that a connection without it is now refused.
 */
export async function upgradeTrustCluster(options: {
  pgdata: string;
  root: string;
  /** The server's URL without a password (trust lets it in). */
  url: string;
  progress: (message: string) => void;
}): Promise<string> {
  const { pgdata, root, url, progress } = options;
  progress(
    `embedded Postgres: this cluster let every local user in as superuser (auth trust, made by an older ` +
      `version); setting a password (kept in ${passwordPath(root)}, mode 0600) and requiring it`,
  );
  const password = readPassword(root) ?? createPassword(root);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(`ALTER ROLE postgres PASSWORD ${pg.escapeLiteral(scramVerifier(password))}`);
    const hba = path.join(pgdata, 'pg_hba.conf');
    const text = fs.readFileSync(hba, 'utf8');
    const upgraded = text
      .split('\n')
      .map((line) => (HBA_METHOD_LINE.test(line) ? line.replace(/\btrust\b/, 'scram-sha-256') : line))
      .join('\n');
    replaceKeepingOwner(hba, upgraded);
    await client.query('SELECT pg_reload_conf()');
  } finally {
    await client.end().catch(() => {});
  }
  // pg_reload_conf() signals the postmaster; new connections see the new rules a moment later.
  const deadline = Date.now() + 10_000;
  while (await connects(url)) {
    if (Date.now() > deadline) {
      throw new EmbeddedPostgresError(
        `the embedded Postgres still accepts connections without a password after its pg_hba.conf was ` +
          `rewritten; stop it (model-rollout db stop) and start it again`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return password;
}

async function connects(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Rewrites a file the server owns (run as root: the postgres user) without changing its owner or mode. */
function replaceKeepingOwner(file: string, text: string): void {
  const st = fs.statSync(file);
  const tmp = `${file}.${process.pid}`;
  fs.writeFileSync(tmp, text, { mode: st.mode & 0o777 });
  fs.chownSync(tmp, st.uid, st.gid);
  fs.renameSync(tmp, file);
}
