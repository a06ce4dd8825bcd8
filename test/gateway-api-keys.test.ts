/**
 * Named API keys on the gateway, end to end (real `openai` client, gateway, router, simulator, Postgres):
 * per-key routes (403 otherwise), arm headers and evaluation metadata only for keys allowed them, and keys
 * re-read from the keys file without a restart (on change and on SIGHUP).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createApiKeyStore,
  parseApiKeys,
  sha256Hex,
  type ApiKeyStore,
} from '../src/data-plane/gateway/api-keys';
import { createGateway, type Gateway } from '../src/data-plane/gateway/server';
import { simulatorRegistry } from '../src/data-plane/providers';
import { createRouter, type Router } from '../src/data-plane/router/router';
import { loadQuestions, startSimulator, type SimulatorHandle } from '../src/tooling/simulator';
import { createRoute } from '../src/store/routing-state';
import { createTestDatabase, type TestDatabase } from './helpers/db';

const APP_KEY = 'sk-app-0123456789abcdef';
const EVAL_KEY = 'sk-eval-0123456789abcdef';
const LATE_KEY = 'sk-late-0123456789abcdef';
const QUESTION = loadQuestions()[5];

let db: TestDatabase;
let sim: SimulatorHandle;
let router: Router;
let gateway: Gateway;
let store: ApiKeyStore;
let url: string;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-keys-'));
const keysFile = path.join(tmp, 'gateway-keys.json');
const reloads: Array<{ ok: boolean }> = [];

function writeKeys(keys: object[]) {
  fs.writeFileSync(keysFile, JSON.stringify({ keys }), { mode: 0o600 });
}

const appEntry = { name: 'support-app', sha256: sha256Hex(APP_KEY), routes: ['support-bot'] };
const evalEntry = {
  name: 'eval-harness',
  key: EVAL_KEY,
  routes: ['*'],
  armHeaders: true,
  evaluation: true,
};

beforeAll(async () => {
  db = await createTestDatabase();
  sim = await startSimulator({ scenario: { default: { latencyMs: { median: 2 }, accuracy: 0.95 } } });
  router = await createRouter({
    database: db,
    connectionString: db.connectionString,
    providers: { registry: simulatorRegistry(sim.url), breaker: false },
    cache: { pollIntervalMs: 200 },
  });
  const ctx = { actor: 'test', reason: 'test' };
  for (const name of ['support-bot', 'billing-bot'])
    await createRoute(
      db.pool,
      { name, blue: { target: { provider: 'openai', model: 'gpt-4o' }, fallbacks: [] } },
      ctx,
    );
  writeKeys([appEntry, evalEntry]);
  store = createApiKeyStore({ file: keysFile, watchIntervalMs: 100, onReload: (r) => reloads.push(r) });
  gateway = createGateway({ router, auth: { store } });
  url = await gateway.listen({ port: 0 });
  // Both routes, each by its own notification: seeing the second says nothing about the first (a fresh CI
  // run once had billing-bot and not yet support-bot, and answered 404).
  const deadline = Date.now() + 15_000;
  while (!(router.state('support-bot') && router.state('billing-bot'))) {
    if (Date.now() > deadline) throw new Error('the router never saw both routes within 15 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}, 60_000);

afterAll(async () => {
  await gateway?.close();
  await router?.close();
  await sim?.close();
  await db?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const client = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries: 0 });

function chat(apiKey: string, model: string, extra: Record<string, unknown> = {}) {
  return client(apiKey)
    .chat.completions.create({
      model,
      messages: [{ role: 'user', content: QUESTION.prompt }],
      ...extra,
    } as OpenAI.ChatCompletionCreateParamsNonStreaming)
    .withResponse();
}

describe('named API keys', () => {
  it('a key without the route gets 403 naming the key and the route, never the key itself', async () => {
    const ok = await chat(APP_KEY, 'support-bot');
    expect(ok.response.status).toBe(200);
    const err = await chat(APP_KEY, 'billing-bot').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    const e = err as InstanceType<typeof OpenAI.PermissionDeniedError>;
    expect(e.status).toBe(403);
    expect(e.message).toContain('API key "support-app" may not call route "billing-bot"');
    expect(e.message).not.toContain(APP_KEY);
    expect((e.error as { param: string }).param).toBe('model');
    // The routing state endpoint is guarded the same way.
    const state = await fetch(`${url}/v1/routes/billing-bot`, {
      headers: { authorization: `Bearer ${APP_KEY}` },
    });
    expect(state.status).toBe(403);
    // A key that may call every route.
    expect((await chat(EVAL_KEY, 'billing-bot')).response.status).toBe(200);
  });

  it('arm headers only for keys allowed to see them, in JSON and streamed answers', async () => {
    const app = await chat(APP_KEY, 'support-bot');
    expect(app.response.headers.get('x-rollout-tag')).toBeNull();
    expect(app.response.headers.get('x-rollout-target')).toBeNull();
    expect(app.response.headers.get('x-request-id')).toBeTruthy(); // still there for feedback
    const evaluation = await chat(EVAL_KEY, 'support-bot');
    expect(evaluation.response.headers.get('x-rollout-tag')).toBe('stable');
    expect(evaluation.response.headers.get('x-rollout-target')).toBe('openai:gpt-4o');

    const stream = await client(APP_KEY)
      .chat.completions.create({
        model: 'support-bot',
        messages: [{ role: 'user', content: QUESTION.prompt }],
        stream: true,
      })
      .withResponse();
    for await (const _chunk of stream.data) {
      // drain
    }
    expect(stream.response.headers.get('x-rollout-tag')).toBeNull();
    expect(stream.response.headers.get('x-rollout-target')).toBeNull();
  });

  it('evaluation metadata (metadata.reference_id) only from keys marked for evaluation traffic', async () => {
    const metadata = { metadata: { reference_id: QUESTION.id } };
    const err = await chat(APP_KEY, 'support-bot', metadata).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((err as Error).message).toContain('may not send evaluation metadata');
    expect((await chat(EVAL_KEY, 'support-bot', metadata)).response.status).toBe(200);
  });

  it('picks up a new key from the keys file without a restart, and drops a removed one', async () => {
    const before = await chat(LATE_KEY, 'support-bot').catch((e: unknown) => e);
    expect(before).toBeInstanceOf(OpenAI.AuthenticationError);
    writeKeys([evalEntry, { name: 'late-app', key: LATE_KEY, routes: ['support-bot'] }]);
    const deadline = Date.now() + 5_000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await chat(LATE_KEY, 'support-bot').catch(() => ({ response: { status: 401 } }))).response
        .status;
      if (status === 200) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(200);
    // The old app key was removed from the file: refused now.
    expect(await chat(APP_KEY, 'support-bot').catch((e: unknown) => e)).toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    // A broken file keeps the keys in force (and says why).
    fs.writeFileSync(keysFile, '{"keys": [{"name": "x"');
    await new Promise((r) => setTimeout(r, 500));
    expect(reloads.at(-1)).toMatchObject({ ok: false, error: expect.stringContaining('not valid JSON') });
    expect((await chat(LATE_KEY, 'support-bot')).response.status).toBe(200);
  });

  it('re-reads the keys file on SIGHUP', async () => {
    const hupFile = path.join(tmp, 'hup-keys.json');
    fs.writeFileSync(hupFile, JSON.stringify({ keys: [evalEntry] }));
    // Polling effectively off: only the signal can reload it.
    const hup = createApiKeyStore({ file: hupFile, watchIntervalMs: 3_600_000 });
    try {
      expect(hup.lookup(LATE_KEY)).toBeUndefined();
      fs.writeFileSync(hupFile, JSON.stringify({ keys: [{ name: 'hup', key: LATE_KEY, routes: ['*'] }] }));
      process.kill(process.pid, 'SIGHUP');
      const deadline = Date.now() + 2_000;
      while (!hup.lookup(LATE_KEY) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(hup.lookup(LATE_KEY)?.name).toBe('hup');
      expect(hup.lookup(EVAL_KEY)).toBeUndefined();
    } finally {
      hup.close();
    }
  });

  it('refuses a keys file naming a bad field, and never echoes a key', () => {
    expect(() =>
      parseApiKeys(JSON.stringify({ keys: [{ name: 'a', key: 'short', routes: ['*'] }] })),
    ).toThrow(/keys\.0\.key: a key must be at least 16 characters/);
    expect(() => parseApiKeys(JSON.stringify({ keys: [{ name: 'a', key: APP_KEY, routes: [] }] }))).toThrow(
      /keys\.0\.routes: name the routes/,
    );
    const dup = JSON.stringify({
      keys: [
        { name: 'a', key: APP_KEY, routes: ['*'] },
        { name: 'b', key: APP_KEY, routes: ['*'] },
      ],
    });
    expect(() => parseApiKeys(dup)).toThrow(/keys\.1: the same key as another entry/);
    try {
      parseApiKeys(dup);
    } catch (err) {
      expect((err as Error).message).not.toContain(APP_KEY);
    }
  });
});
