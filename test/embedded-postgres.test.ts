/**
 * The embedded PostgreSQL as a new contributor meets it: no DATABASE_URL, no Postgres server of their own.
 * Each test uses a cluster of its own in a temporary folder on a free port, so it neither needs nor touches
 * the checkout's `.data/postgres` that the rest of the suite may be running on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startSimulator, type SimulatorHandle } from '../src/tooling/simulator';
import { freePort, openDatabase } from '../src/store/database';
import {
  ensureEmbeddedPostgres,
  findEmbeddedPostgres,
  stopEmbeddedPostgres,
} from '../src/store/embedded-postgres';
import { temporalTestEnv } from './helpers/temporal';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'model-rollout.js');
const roots: string[] = [];

function tempRoot(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-embedded-'));
  // mkdtemp makes it private; as root the server runs as the postgres user, which must reach it.
  fs.chmodSync(dir, 0o755);
  roots.push(dir);
  return path.join(dir, '.data', 'postgres');
}

afterAll(async () => {
  for (const dir of roots) {
    await stopEmbeddedPostgres({ root: path.join(dir, '.data', 'postgres') }).catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe('embedded PostgreSQL', () => {
  it('starts on first use, is found again by the next caller, and delivers NOTIFY across connections', async () => {
    const root = tempRoot();
    const port = await freePort();
    const first = await ensureEmbeddedPostgres({ root, port });
    expect(first).toMatchObject({
      started: true,
      port,
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    });
    const again = await ensureEmbeddedPostgres({ root, port });
    expect(again).toMatchObject({ started: false, pid: first.pid, url: first.url });

    const db = await openDatabase({ url: '', embeddedRoot: root, embeddedPort: port });
    expect(db.embedded).toBe(true);
    const listener = new pg.Client({ connectionString: first.connectionString });
    await listener.connect();
    try {
      await listener.query('LISTEN model_rollout_test');
      const received = new Promise<string | undefined>((resolve) =>
        listener.on('notification', (n) => resolve(n.payload)),
      );
      await db.pool.query(`SELECT pg_notify('model_rollout_test', 'hello from another connection')`);
      expect(await received).toBe('hello from another connection');
    } finally {
      await listener.end();
      await db.close();
    }
    expect(await stopEmbeddedPostgres({ root })).toBe(true);
    expect(await findEmbeddedPostgres({ root })).toBeUndefined();
  });

  it('recovers from a state file whose process is gone', async () => {
    const root = tempRoot();
    const port = await freePort();
    const first = await ensureEmbeddedPostgres({ root, port });
    await stopEmbeddedPostgres({ root });
    // What a machine that lost power leaves behind: the state file of a server that no longer exists.
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.on('close', r));
    const stale = {
      url: first.url,
      port,
      pid: dead.pid,
      pgdata: path.join(root, 'pgdata'),
      startedAt: 'then',
    };
    fs.writeFileSync(path.join(root, 'server.json'), JSON.stringify(stale));
    const lines: string[] = [];

    const next = await ensureEmbeddedPostgres({ root, port, progress: (m) => lines.push(m) });
    expect(lines.join('\n')).toContain(`removing stale state file (pid ${dead.pid} is gone)`);
    expect(next.started).toBe(true);
    expect(next.pid).not.toBe(dead.pid);
    const state = JSON.parse(fs.readFileSync(path.join(root, 'server.json'), 'utf8'));
    expect(state.pid).toBe(next.pid);
  });

  it('names the port when another process already holds it', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await expect(ensureEmbeddedPostgres({ root: tempRoot(), port })).rejects.toThrow(
        `port ${port} on 127.0.0.1 is already in use by another process`,
      );
    } finally {
      blocker.close();
    }
  });
});

/**
 * The reproduction: a worker in one terminal, `routes set` in another, a gateway in a third, all on
 * embedded defaults (no DATABASE_URL). They must share one database, and a routing change made by one
 * process must reach the router of another by NOTIFY, far sooner than its 30 s poll.
 */
describe('several processes on embedded defaults', () => {
  const temporal = temporalTestEnv();
  const children: ChildProcess[] = [];
  let simulator: SimulatorHandle;

  afterAll(async () => {
    for (const child of children) child.kill('SIGINT');
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.on('close', r)) : 0)));
    await simulator?.close();
  });

  it(
    'share one database, and a change by one process reaches the router of another by NOTIFY',
    { timeout: 240_000 },
    async () => {
      simulator = await startSimulator();
      const cwd = path.dirname(path.dirname(tempRoot()));
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        MODEL_ROLLOUT_PG_PORT: String(await freePort()),
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_NAMESPACE: temporal.namespace,
        TEMPORAL_TASK_QUEUE: temporal.taskQueue,
        NO_COLOR: '1',
      };
      delete env.DATABASE_URL;
      const background = (args: string[]) => {
        const child = spawn(process.execPath, [BIN, ...args], { cwd, env });
        children.push(child);
        let out = '';
        child.stdout!.on('data', (c) => (out += c));
        child.stderr!.on('data', (c) => (out += c));
        return { child, output: () => out };
      };
      const waitFor = async (what: () => boolean, label: string, ms = 120_000) => {
        const deadline = Date.now() + ms;
        while (!what()) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };

      const worker = background(['worker', '--simulator', simulator.url]);
      await waitFor(() => /^Postgres:\s+\S+ \(embedded\)/m.test(worker.output()), 'the worker');
      const gatewayPort = await freePort();
      const gateway = background([
        'gateway',
        '--simulator',
        simulator.url,
        '--no-auth',
        '--port',
        String(gatewayPort),
        '--poll-interval',
        '30000',
      ]);
      await waitFor(() => /gateway: /.test(gateway.output()), 'the gateway');
      const workerUrl = /^Postgres:\s+(\S+)/m.exec(worker.output())![1];
      expect(gateway.output()).toContain(`postgres: ${workerUrl} (embedded)`);

      const openai = new OpenAI({
        baseURL: `http://127.0.0.1:${gatewayPort}/v1`,
        apiKey: 'unused',
        maxRetries: 0,
      });
      const ask = () =>
        openai.chat.completions.create({
          model: 'support-bot',
          messages: [{ role: 'user', content: 'Draft a two-line apology for a late parcel.' }],
        });
      await expect(ask()).rejects.toThrow(/route "support-bot" does not exist/);

      const set = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          [BIN, 'routes', 'set', '--file', path.join(ROOT, 'examples/route.json')],
          {
            cwd,
            env,
          },
        );
        let out = '';
        child.stdout.on('data', (c) => (out += c));
        child.stderr.on('data', (c) => (out += c));
        child.on('close', (code) => resolve({ code, out }));
      });
      expect(set.code, set.out).toBe(0);
      expect(set.out).toContain('route support-bot: created at version 1');
      const setAt = Date.now();

      let answer: Awaited<ReturnType<typeof ask>> | undefined;
      while (!answer && Date.now() - setAt < 10_000) answer = await ask().catch(() => undefined);
      const propagationMs = Date.now() - setAt;
      console.log(
        `routes set in one process reached the gateway of another in ${propagationMs} ms (poll: 30 s)`,
      );
      expect(answer?.choices[0].message.content).toBeTruthy();
      expect(propagationMs).toBeLessThan(5_000);
    },
  );
});
