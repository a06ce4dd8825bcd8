/**
 * The embedded PostgreSQL is closed to every other local user: a second OS user reaches its port (127.0.0.1
 * is everyone's) but gets asked for a password it cannot read, where the cluster used to let anyone in as
 * superuser. A cluster made that old way is upgraded in place, data kept. And a deployment that says it is
 * production never gets the embedded server. Each test has a cluster of its own on a free port in a temporary
 * folder, never the checkout's `.data/postgres`.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/store/database';
import { ensureEmbeddedPostgres, stopEmbeddedPostgres } from '../src/store/embedded-postgres';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'model-rollout.js');
const INTRUDER = 'mr-intruder';
const dirs: string[] = [];
let createdIntruder = false;

function tempRoot(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-embedded-auth-'));
  // As root the server runs as the postgres user, which must reach the folder.
  fs.chmodSync(dir, 0o755);
  dirs.push(dir);
  return path.join(dir, '.data', 'postgres');
}

afterAll(async () => {
  for (const dir of dirs) {
    await stopEmbeddedPostgres({ root: path.join(dir, '.data', 'postgres') }).catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (createdIntruder) spawnSync('userdel', [INTRUDER]);
});

async function connectError(connectionString: string): Promise<Error | undefined> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return undefined;
  } catch (err) {
    return err as Error;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * What another local user can do: read the checkout's files, and open the port and say "I am postgres"
 * (a StartupMessage, with Node's built-ins only, so nothing of the checkout has to be readable to them).
 * The server's first answer is an authentication request: 0 lets them in, 10 asks for SCRAM.
 */
const INTRUDER_SCRIPT = `
const fs = require('node:fs'), net = require('node:net');
const [port, passwordFile, stateFile] = process.argv.slice(1);
const out = {};
for (const [k, f] of [['password', passwordFile], ['state', stateFile]]) {
  try { fs.readFileSync(f); out[k] = 'read'; } catch (e) { out[k] = e.code; }
}
const int32 = (n) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
const body = Buffer.concat([int32(196608), Buffer.from('user\\0postgres\\0database\\0postgres\\0\\0')]);
const s = net.connect(Number(port), '127.0.0.1', () => s.write(Buffer.concat([int32(body.length + 4), body])));
s.once('data', (d) => {
  out.reply = String.fromCharCode(d[0]);
  out.auth = d[0] === 82 ? d.readInt32BE(5) : d.toString('latin1', 5).split('\\0')[0];
  console.log(JSON.stringify(out));
  s.destroy();
});
s.once('error', (e) => { out.error = e.code; console.log(JSON.stringify(out)); });
`;

describe('embedded PostgreSQL access', () => {
  it('asks another OS user for a password it cannot read', async (ctx) => {
    if (process.getuid?.() !== 0) {
      ctx.skip('creating a second OS user needs root (CI runs as root)');
      return;
    }
    if (spawnSync('id', ['-u', INTRUDER]).status !== 0) {
      const made = spawnSync('useradd', [
        '--system',
        '--no-create-home',
        '--shell',
        '/usr/sbin/nologin',
        INTRUDER,
      ]);
      expect(made.status, made.stderr?.toString()).toBe(0);
      createdIntruder = true;
    }
    const uid = Number(spawnSync('id', ['-u', INTRUDER]).stdout.toString());
    const gid = Number(spawnSync('id', ['-g', INTRUDER]).stdout.toString());

    const root = tempRoot();
    const server = await ensureEmbeddedPostgres({ root, port: await freePort() });
    // What is printed has no password; what the checkout's processes connect with has one.
    expect(server.url).toBe(`postgres://postgres@127.0.0.1:${server.port}/postgres`);
    expect(new URL(server.connectionString).password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const passwordFile = path.join(root, 'password');
    expect(fs.statSync(passwordFile).mode & 0o777).toBe(0o600);
    expect(fs.statSync(root).mode & 0o777).toBe(0o700);
    const state = fs.readFileSync(path.join(root, 'server.json'), 'utf8');
    expect(state).not.toContain(new URL(server.connectionString).password);

    const intruder = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        ['-e', INTRUDER_SCRIPT, String(server.port), passwordFile, path.join(root, 'server.json')],
        { uid, gid, cwd: '/', env: { PATH: process.env.PATH } },
      );
      let out = '';
      child.stdout.on('data', (c) => (out += c));
      child.stderr.on('data', (c) => (out += c));
      child.on('close', (code) => resolve({ code, out }));
    });
    expect(intruder.code, intruder.out).toBe(0);
    // It reaches the port, but the server asks for SCRAM (10), not "come in" (0); the password and the
    // state file are out of its reach.
    expect(JSON.parse(intruder.out)).toEqual({ password: 'EACCES', state: 'EACCES', reply: 'R', auth: 10 });

    // Knowing the URL is not enough, and guessing is refused; the password gets in.
    expect((await connectError(server.url))?.message).toMatch(/password/i);
    const wrong = new URL(server.connectionString);
    wrong.password = 'guess';
    expect(await connectError(wrong.toString())).toMatchObject({ code: '28P01' });
    expect(await connectError(server.connectionString)).toBeUndefined();
  });

  it('upgrades a cluster made with auth trust, stopped or running, and keeps its data', async () => {
    const root = tempRoot();
    const port = await freePort();
    const first = await ensureEmbeddedPostgres({ root, port });
    const admin = new pg.Client({ connectionString: first.connectionString });
    await admin.connect();
    await admin.query(`CREATE TABLE kept (note text); INSERT INTO kept VALUES ('made before the upgrade')`);
    await admin.end();

    /** Turns the cluster into what an older version made: trust everywhere, no password. */
    const makeOld = async (connectionString: string) => {
      const c = new pg.Client({ connectionString });
      await c.connect();
      await c.query('ALTER ROLE postgres PASSWORD NULL');
      const hba = path.join(root, 'pgdata', 'pg_hba.conf');
      const st = fs.statSync(hba);
      fs.writeFileSync(hba, fs.readFileSync(hba, 'utf8').replace(/scram-sha-256/g, 'trust'));
      fs.chownSync(hba, st.uid, st.gid);
      await c.query('SELECT pg_reload_conf()');
      await c.end();
      fs.rmSync(path.join(root, 'password'));
      // The old server lets anyone in without a password.
      await expect.poll(() => connectError(first.url)).toBeUndefined();
    };

    // Stopped: the next process to need it starts it and closes it before handing it out.
    await makeOld(first.connectionString);
    await stopEmbeddedPostgres({ root });
    const lines: string[] = [];
    const started = await ensureEmbeddedPostgres({ root, port, progress: (m) => lines.push(m) });
    expect(lines.join('\n')).toContain('this cluster let every local user in as superuser (auth trust');
    expect(fs.statSync(path.join(root, 'password')).mode & 0o777).toBe(0o600);
    expect(await connectError(started.url)).toBeDefined();
    const c = new pg.Client({ connectionString: started.connectionString });
    await c.connect();
    expect((await c.query('SELECT note FROM kept')).rows).toEqual([{ note: 'made before the upgrade' }]);
    await c.end();

    // Running (an older checkout's server, still up): found, then upgraded before it is used.
    await makeOld(started.connectionString);
    lines.length = 0;
    const found = await ensureEmbeddedPostgres({ root, port, progress: (m) => lines.push(m) });
    expect(found).toMatchObject({ started: false, pid: started.pid });
    expect(lines.join('\n')).toContain('setting a password');
    expect(await connectError(found.url)).toBeDefined();
    expect(await connectError(found.connectionString)).toBeUndefined();
  });

  it('names the missing password file of a cluster that needs one', async () => {
    const root = tempRoot();
    const port = await freePort();
    await ensureEmbeddedPostgres({ root, port });
    await stopEmbeddedPostgres({ root });
    fs.rmSync(path.join(root, 'password'));
    await expect(ensureEmbeddedPostgres({ root, port })).rejects.toThrow(
      `its password file ${path.join(root, 'password')} is missing. Restore that file, or delete ${root}`,
    );
  });
});

describe('production', () => {
  const cli = (args: string[], env: NodeJS.ProcessEnv, cwd: string) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [BIN, ...args], { cwd, env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => (stdout += c));
      child.stderr.on('data', (c) => (stderr += c));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });

  it.each([
    ['NODE_ENV', ['migrate']],
    ['MODEL_ROLLOUT_ENV', ['db', 'start']],
    ['NODE_ENV', ['gateway', '--no-auth', '--port', '0']],
  ])('%s=production with no DATABASE_URL: %j exits naming DATABASE_URL', async (variable, args) => {
    const cwd = path.dirname(path.dirname(tempRoot()));
    const env: NodeJS.ProcessEnv = { ...process.env, [variable]: 'production', NO_COLOR: '1' };
    delete env.DATABASE_URL;
    delete env.MODEL_ROLLOUT_PG_DIR;
    const result = await cli(args, env, cwd);
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stderr).toContain(
      `DATABASE_URL is not set, and ${variable}=production says this is a production`,
    );
    expect(result.stderr).toContain('Set DATABASE_URL to your PostgreSQL server');
    // Nothing was created in the checkout.
    expect(fs.existsSync(path.join(cwd, '.data', 'postgres'))).toBe(false);
  });
});
