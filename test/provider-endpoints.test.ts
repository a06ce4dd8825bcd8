/**
 * Issue 13, finding 1: a provider's key goes only to endpoints the deployment configured. A route, a
 * rollout spec or a judge target naming another host as `baseUrl` is refused (at validation, naming the
 * field, and again before any call), and that host never receives a request, let alone the key. The
 * foreign host is a real HTTP server that records everything it receives.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import { createActivities } from '../activities';
import { createGateway, type Gateway } from '../src/data-plane/gateway/server';
import { createFallbackChain } from '../src/data-plane/providers/fallback-chain';
import { parseProvidersFile } from '../src/data-plane/providers/providers-file';
import { createProviderRegistry } from '../src/data-plane/providers/registry';
import { createRouter, type Router } from '../src/data-plane/router/router';
import { judgeScore } from '../src/decision/scoring/judge';
import { startSimulator, type SimulatorHandle } from '../src/tooling/simulator';
import { createRoute, getRoute } from '../src/store/routing-state';
import type { RunningWorker } from '../src/control-plane/temporal/worker';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { temporalTestEnv } from './helpers/temporal';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'model-rollout.js');
const SECRET = `sk-test-${crypto.randomBytes(12).toString('hex')}`;
const GATEWAY_KEY = 'gw-test-key-0123456789';

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

/** A host nobody configured: answers like an OpenAI endpoint would, and remembers every request. */
async function startRecorder(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        id: 'x',
        object: 'chat.completion',
        created: 0,
        model: 'gpt-4o',
        choices: [{ index: 0, message: { role: 'assistant', content: '4' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/v1`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const env = temporalTestEnv();
let db: TestDatabase;
let sim: SimulatorHandle;
let recorder: Awaited<ReturnType<typeof startRecorder>>;
let router: Router;
let gateway: Gateway;
let gatewayUrl: string;
let worker: RunningWorker;
let client: Client;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-endpoints-'));

/** The deployment: OpenAI lives at the simulator, with the simulator's second path as an allowed alternative. */
const deploymentEnv = () => ({ OPENAI_API_KEY: SECRET, OPENAI_BASE_URL: sim.openaiBaseUrl });
const registry = () =>
  createProviderRegistry({
    env: deploymentEnv(),
    providers: { openai: { allowedBaseUrls: [`${sim.url}/alt/v1`] } },
  });

function cli(args: string[], extraEnv: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: env.address,
        TEMPORAL_NAMESPACE: env.namespace,
        TEMPORAL_TASK_QUEUE: env.taskQueue,
        DATABASE_URL: db.connectionString,
        ...deploymentEnv(),
        ...extraEnv,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end();
  });
}

const writeJson = (name: string, value: unknown) => {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, JSON.stringify(value));
  return file;
};

beforeAll(async () => {
  db = await createTestDatabase();
  sim = await startSimulator();
  recorder = await startRecorder();
  router = await createRouter({
    database: db,
    connectionString: db.connectionString,
    providers: { registry: registry(), breaker: false },
    cache: { pollIntervalMs: 100 },
    events: { flushIntervalMs: 20 },
  });
  gateway = createGateway({ router, auth: { keys: [GATEWAY_KEY] } });
  gatewayUrl = await gateway.listen({ port: 0 });
  client = await env.client();
  worker = await env.worker(
    createActivities({
      db,
      chain: createFallbackChain({ registry: registry() }),
      client,
      providers: registry(),
    }),
  );
}, 60_000);

afterAll(async () => {
  await worker?.shutdown();
  await client?.connection.close();
  await gateway?.close();
  await router?.close();
  await recorder?.close();
  await sim?.close();
  await db?.close();
});

const ask = (route: string) =>
  fetch(`${gatewayUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${GATEWAY_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: route, messages: [{ role: 'user', content: 'what is 2 + 2?' }] }),
  });

describe('provider endpoints come from the deployment only', () => {
  it('routes set refuses a target whose baseUrl is a foreign host, naming the field', async () => {
    const file = writeJson('route.json', {
      name: 'endpoint-route',
      blue: { target: { provider: 'openai', model: 'gpt-4o', baseUrl: recorder.url } },
    });
    const r = await cli(['routes', 'set', '--file', file, '--reason', 'test']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('blue.target.baseUrl');
    expect(r.stderr).toMatch(/not an endpoint of provider "openai"/);
    expect(r.stderr).not.toContain(SECRET);
    expect(await getRoute(db.pool, 'endpoint-route')).toBeFalsy();
    expect(recorder.received).toEqual([]);

    // An endpoint on the deployment's allowlist is accepted.
    const allowed = writeJson('route-allowed.json', {
      name: 'endpoint-route',
      blue: { target: { provider: 'openai', model: 'gpt-4o', baseUrl: `${sim.url}/alt/v1/` } },
    });
    const providersFile = writeJson('providers.json', {
      providers: { openai: { allowedBaseUrls: [`${sim.url}/alt/v1`] } },
    });
    const ok = await cli(['routes', 'set', '--file', allowed, '--reason', 'test'], {
      MODEL_ROLLOUT_PROVIDERS_FILE: providersFile,
    });
    expect(ok.code, ok.stderr).toBe(0);
  }, 60_000);

  it('the gateway never sends a key to a foreign baseUrl that reached routing state some other way', async () => {
    // Written straight into Postgres, past every validation (a hand edit, or a row from before this check).
    await createRoute(
      db.pool,
      {
        name: 'smuggled',
        blue: { target: { provider: 'openai', model: 'gpt-4o', baseUrl: recorder.url }, fallbacks: [] },
      },
      { actor: 'test', reason: 'bypasses validation' },
    );
    await expect.poll(() => router.state('smuggled'), { timeout: 10_000 }).toBeDefined();
    const res = await ask('smuggled');
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { type: string; message: string } };
    expect(body.error.type).toBe('server_error');
    expect(body.error.message).not.toContain('127.0.0.1');
    expect(body.error.message).not.toContain(SECRET);
    expect(recorder.received).toEqual([]);
  }, 30_000);

  it('start refuses a candidate or a judge naming a foreign baseUrl, naming the field', async () => {
    await createRoute(
      db.pool,
      { name: 'start-route', blue: { target: { provider: 'openai', model: 'gpt-4o-mini' }, fallbacks: [] } },
      { actor: 'test', reason: 'test' },
    );
    const candidate = writeJson('spec-candidate.json', {
      route: 'start-route',
      candidate: { target: { provider: 'openai', model: 'gpt-4o', baseUrl: recorder.url } },
    });
    const r1 = await cli(['start', '--spec', candidate]);
    expect(r1.code).not.toBe(0);
    expect(r1.stderr).toContain('candidate.target.baseUrl');

    const judge = writeJson('spec-judge.json', {
      route: 'start-route',
      candidate: 'openai:gpt-4o',
      evaluation: { judge: { provider: 'openai', model: 'gpt-4o', baseUrl: recorder.url } },
    });
    const r2 = await cli(['start', '--spec', judge]);
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toContain('evaluation.judge.baseUrl');
    expect((await getRoute(db.pool, 'start-route'))?.owner).toBeNull();
    expect(recorder.received).toEqual([]);
  }, 60_000);

  it('a rollout started by any Temporal client with a foreign candidate baseUrl fails before touching the route', async () => {
    await createRoute(
      db.pool,
      { name: 'raw-client', blue: { target: { provider: 'openai', model: 'gpt-4o-mini' }, fallbacks: [] } },
      { actor: 'test', reason: 'test' },
    );
    const before = await getRoute(db.pool, 'raw-client');
    const handle = await client.workflow.start('rolloutWorkflow', {
      taskQueue: env.taskQueue,
      workflowId: `rollout-raw-client-${crypto.randomBytes(3).toString('hex')}`,
      args: [
        {
          route: 'raw-client',
          candidate: { target: { provider: 'openai', model: 'gpt-4o', baseUrl: recorder.url } },
          actor: 'someone',
        },
      ],
    });
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as { cause?: { message?: string } } | undefined;
    expect(cause?.cause?.message ?? '').toContain('candidate.target.baseUrl');
    const after = await getRoute(db.pool, 'raw-client');
    expect(after?.version).toBe(before?.version);
    expect(after?.green).toBeNull();
    expect(recorder.received).toEqual([]);
  }, 60_000);

  it('a judge naming a foreign baseUrl in a rollout started by any Temporal client: the worker refuses it, naming the field', async () => {
    await createRoute(
      db.pool,
      { name: 'raw-judge', blue: { target: { provider: 'openai', model: 'gpt-4o-mini' }, fallbacks: [] } },
      { actor: 'test', reason: 'test' },
    );
    const handle = await client.workflow.start('rolloutWorkflow', {
      taskQueue: env.taskQueue,
      workflowId: `rollout-raw-judge-${crypto.randomBytes(3).toString('hex')}`,
      args: [
        {
          route: 'raw-judge',
          candidate: 'openai:gpt-4o',
          evaluation: {
            interval: '1s',
            judge: { provider: 'openai', model: 'gpt-4o', baseUrl: recorder.url },
          },
          triggers: { interval: '1h' },
          actor: 'someone',
        },
      ],
    });
    try {
      await expect
        .poll(
          async () =>
            (await handle.query<{ scoring?: { batchError?: string } }>('status')).scoring?.batchError ?? '',
          { timeout: 30_000, interval: 250 },
        )
        .toContain('evaluation.judge.baseUrl');
    } finally {
      await handle.terminate('test over');
    }
    expect(recorder.received).toEqual([]);
  }, 60_000);

  it('a judge target naming a foreign baseUrl is refused before the call: the host gets nothing', async () => {
    const chain = createFallbackChain({ registry: registry(), breaker: false });
    try {
      await expect(
        judgeScore(
          chain,
          { provider: 'openai', model: 'gpt-4o', baseUrl: recorder.url },
          'what is 2 + 2?',
          '4',
        ),
      ).rejects.toMatchObject({ errorClass: 'not_found' });
      // The deployment's own endpoint answers, with the deployment's key.
      const ok = await judgeScore(chain, { provider: 'openai', model: 'gpt-4o' }, 'what is 2 + 2?', '4');
      expect(ok.score).not.toBeUndefined();
    } finally {
      await chain.close();
    }
    expect(recorder.received).toEqual([]);
  }, 30_000);

  it('the gateway and the worker refuse a bad providers file at start, naming the field, before any I/O', async () => {
    const bad = writeJson('bad-providers.json', { providers: { openai: { allowedBaseUrls: ['ftp://x'] } } });
    for (const command of [['gateway', '--no-auth', '--port', '0'], ['worker']]) {
      const r = await cli(command, {
        MODEL_ROLLOUT_PROVIDERS_FILE: bad,
        DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
        TEMPORAL_ADDRESS: '127.0.0.1:1',
      });
      expect(r.code, command[0]).not.toBe(0);
      expect(r.stderr).toContain('providers.openai.allowedBaseUrls.0: must be an http(s) URL');
    }
  }, 60_000);

  it('the providers file is validated, naming the field', () => {
    expect(() => parseProvidersFile('{"providers":{"openai":{"allowedBaseUrls":["ftp://x"]}}}')).toThrow(
      /openai\.allowedBaseUrls\.0: must be an http\(s\) URL/,
    );
    expect(() => parseProvidersFile('{"providers":{"openai":{"apiKey":"sk-x"}}}')).toThrow(/openai/);
    expect(
      parseProvidersFile('{"providers":{"vllm":{"baseUrl":"http://10.0.0.7:8000/v1","requiresKey":false}}}'),
    ).toEqual({ vllm: { baseUrl: 'http://10.0.0.7:8000/v1', requiresKey: false } });
  });
});
