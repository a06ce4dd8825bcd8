/**
 * Every process waits for what it needs at startup instead of exiting, as a deployment starts its pieces in any
 * order: a worker started before its Temporal server exists says it waits, answers its probes with what it
 * waits for, and runs a rollout once the server comes; a gateway started while Postgres refuses connections
 * does the same and serves once Postgres answers. Real processes (the `model-rollout` CLI), a real Temporal
 * dev server started late on a port of the test's own, real Postgres behind a TCP proxy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/control-plane/temporal/connection';
import { startTemporal, type TemporalServer } from '../src/control-plane/temporal/dev-server';
import { parseTargetWithFallbacks } from '../src/decision/config/target';
import { simulatorRegistry } from '../src/data-plane/providers/registry';
import { createRouter, type Router } from '../src/data-plane/router/router';
import { freePort } from '../src/store/database';
import { createRoute } from '../src/store/routing-state';
import { startSimulator, type SimulatorHandle } from '../src/tooling/simulator';
import { startTraffic, type Traffic } from '../src/tooling/traffic';
import { rolloutWorkflow } from '../workflows';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { startTcpProxy, viaProxy, type TcpProxy } from './helpers/tcp-proxy';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'model-rollout.js');

interface Proc {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

const procs: Proc[] = [];
const cleanups: Array<() => Promise<unknown>> = [];

afterAll(async () => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGINT');
  await Promise.all(procs.map((p) => p.exited));
  for (const fn of cleanups.reverse()) await fn().catch(() => {});
});

function cli(args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1', ...env },
  });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const proc = { child, output: () => out, exited };
  procs.push(proc);
  return proc;
}

async function until(what: () => boolean | Promise<boolean>, label: string, ms: number, proc?: Proc) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await what()) return;
    if (proc && proc.child.exitCode !== null)
      throw new Error(`the process exited (${proc.child.exitCode}) before ${label}:\n${proc.output()}`);
    if (Date.now() > deadline)
      throw new Error(`timed out after ${ms} ms waiting for ${label}\n${proc?.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function get(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('startup: waiting for dependencies', () => {
  it(
    'a worker started before its Temporal server waits, says so on its probes, and runs a rollout once it comes',
    { timeout: 420_000 },
    async () => {
      const db: TestDatabase = await createTestDatabase();
      cleanups.push(() => db.close());
      const sim: SimulatorHandle = await startSimulator({
        scenario: { default: { latencyMs: { median: 5 }, accuracy: 0.95 } },
      });
      cleanups.push(() => sim.close());
      const temporalPort = await freePort();
      const uiPort = await freePort();
      const healthPort = await freePort();
      const address = `127.0.0.1:${temporalPort}`;
      const taskQueue = `late-temporal-${process.pid}`;

      const worker = cli(['worker', '--simulator', sim.url, '--health-port', String(healthPort)], {
        TEMPORAL_ADDRESS: address,
        TEMPORAL_NAMESPACE: 'default',
        TEMPORAL_TASK_QUEUE: taskQueue,
        DATABASE_URL: db.connectionString,
      });
      const health = `http://127.0.0.1:${healthPort}`;
      // It waits, saying what for, where, when it tries next and why.
      await until(
        () =>
          new RegExp(
            `waiting for Temporal at ${escape(address)} \\(attempt 2, next in \\d+ s\\): connection refused`,
          ).test(worker.output()),
        'the second attempt',
        90_000,
        worker,
      );
      expect(worker.output()).not.toContain('worker running');
      expect(await get(`${health}/livez`)).toEqual({ status: 200, body: { status: 'alive' } });
      const waiting = await get(`${health}/readyz`);
      expect(waiting.status).toBe(503);
      expect(waiting.body).toMatchObject({
        status: 'starting',
        ready: false,
        waitingFor: ['temporal'],
        dependencies: { postgres: { ready: true }, temporal: { ready: false } },
      });
      expect(JSON.stringify(waiting.body)).not.toContain(String(temporalPort));
      expect((await get(`${health}/healthz`)).status).toBe(503);

      // The server comes, on the address the worker was given.
      const saved = process.env.TEMPORAL_ADDRESS;
      delete process.env.TEMPORAL_ADDRESS;
      let temporal: TemporalServer;
      try {
        temporal = await startTemporal({
          ephemeral: true,
          port: temporalPort,
          uiPort,
          readyTimeoutMs: 120_000,
        });
      } finally {
        if (saved !== undefined) process.env.TEMPORAL_ADDRESS = saved;
      }
      cleanups.push(() => temporal.stop());
      await until(
        () => worker.output().includes('worker running on task queue'),
        'the worker to run',
        60_000,
        worker,
      );
      expect(worker.output()).toMatch(
        new RegExp(`Temporal at ${escape(address)} answered \\(attempt \\d+, after \\d+ s of waiting\\)`),
      );
      await until(async () => (await get(`${health}/readyz`)).status === 200, 'ready', 30_000, worker);
      expect((await get(`${health}/readyz`)).body).toMatchObject({
        status: 'ready',
        ready: true,
        waitingFor: [],
        worker: { state: 'RUNNING', taskQueue },
      });

      // And it runs a rollout from start to promotion.
      const route = 'late-temporal';
      await createRoute(
        db.pool,
        { name: route, blue: parseTargetWithFallbacks({ target: 'anthropic:claude-sonnet-4' }) },
        { actor: 'test', reason: 'startup test' },
      );
      const router: Router = await createRouter({
        database: db,
        connectionString: db.connectionString,
        providers: { registry: simulatorRegistry(sim.url), breaker: false },
        capture: { enabled: true },
        cache: { pollIntervalMs: 200 },
        events: { flushIntervalMs: 20 },
      });
      cleanups.push(() => router.close());
      const traffic: Traffic = startTraffic({ router, route, ratePerSec: 60 });
      cleanups.push(() => traffic.stop());
      const client = await createClient({ address, namespace: 'default' });
      cleanups.push(() => client.connection.close());
      const handle = await client.workflow.start(rolloutWorkflow, {
        taskQueue,
        workflowId: `rollout-${route}`,
        args: [
          {
            route,
            candidate: 'openai:gpt-4o',
            evaluation: { interval: '1s' },
            triggers: { interval: '1s' },
            bake: { duration: '1s' },
            canary: { steps: [1000, 5000, 10000] },
            policy: {
              sequential: {
                promotion: { minCanaryScoredPerStep: 15, minCanaryRequestsPerStep: 20 },
                finalGate: { toleranceRel: 0.1 },
              },
            },
          },
        ],
      });
      const outcome = await handle.result();
      expect(outcome.result).toBe('completed');
    },
  );

  it(
    'a gateway started while Postgres refuses connections says what it waits for, and serves once it answers',
    { timeout: 240_000 },
    async () => {
      const db: TestDatabase = await createTestDatabase();
      cleanups.push(() => db.close());
      const sim = await startSimulator({
        scenario: { default: { latencyMs: { median: 5 }, accuracy: 0.95 } },
      });
      cleanups.push(() => sim.close());
      const proxy: TcpProxy = await startTcpProxy({ port: Number(new URL(db.connectionString).port) });
      cleanups.push(() => proxy.close());
      proxy.set('refuse');
      const [port, adminPort] = [await freePort(), await freePort()];
      const gateway = cli(
        [
          'gateway',
          '--no-auth',
          '--simulator',
          sim.url,
          '--port',
          String(port),
          '--admin-port',
          String(adminPort),
          '--poll-interval',
          '200',
        ],
        { DATABASE_URL: viaProxy(db.connectionString, proxy) },
      );
      await until(
        () =>
          new RegExp(
            `waiting for Postgres at 127\\.0\\.0\\.1:${proxy.port}/${db.name} \\(attempt 2, next in \\d+ s\\): `,
          ).test(gateway.output()),
        'the second attempt',
        90_000,
        gateway,
      );
      const admin = `http://127.0.0.1:${adminPort}`;
      const healthz = await get(`${admin}/healthz`);
      expect(healthz.status).toBe(503);
      expect(healthz.body).toMatchObject({ status: 'starting', serving: false, waitingFor: ['postgres'] });
      // Probes get names, never where the database is.
      for (const secret of [String(proxy.port), db.name, '127.0.0.1'])
        expect(JSON.stringify(healthz.body)).not.toContain(secret);
      expect((await get(`${admin}/readyz`)).status).toBe(503);
      expect((await get(`${admin}/livez`)).status).toBe(200);
      const openai = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused', maxRetries: 0 });
      const ask = () =>
        openai.chat.completions.create({
          model: 'support-bot',
          messages: [{ role: 'user', content: 'Which plan includes priority support?' }],
        });
      const early = await ask().catch((err: unknown) => err);
      expect(early).toMatchObject({ status: 503 });
      expect(String((early as Error).message)).toContain('the gateway is starting: it waits for postgres');

      // Postgres comes back (with a route to serve).
      await createRoute(
        db.pool,
        { name: 'support-bot', blue: parseTargetWithFallbacks({ target: 'openai:gpt-4o' }) },
        { actor: 'test', reason: 'startup test' },
      );
      proxy.set('up');
      await until(
        async () => (await get(`${admin}/readyz`).catch(() => ({ status: 0 }))).status === 200,
        'ready',
        60_000,
        gateway,
      );
      expect(gateway.output()).toMatch(
        new RegExp(`Postgres at 127\\.0\\.0\\.1:${proxy.port}/${db.name} answered \\(attempt \\d+`),
      );
      expect((await get(`${admin}/readyz`)).body).toMatchObject({ ready: true, waitingFor: [] });
      const answer = await ask();
      expect(answer.choices[0].message.content).toBeTruthy();
      const password = new URL(db.connectionString).password;
      if (password) expect(gateway.output()).not.toContain(password);
    },
  );
});
