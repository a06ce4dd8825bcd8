/**
 * The gateway's edges, over real sockets: slow and idle clients are disconnected, oversized headers and
 * routing keys are refused with OpenAI-style bodies, error bodies and /healthz name no internal host, port,
 * database or environment variable, and /metrics and /healthz can live on an admin listener of their own.
 */
import net from 'node:net';
import OpenAI from 'openai';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../src/data-plane/gateway/server';
import { simulatorRegistry } from '../src/data-plane/providers';
import { createRouter, type Router } from '../src/data-plane/router/router';
import { loadQuestions, startSimulator, type SimulatorHandle } from '../src/tooling/simulator';
import { freePort } from '../src/store/database';
import { createRoute } from '../src/store/routing-state';
import { createTestDatabase, type TestDatabase } from './helpers/db';

const KEY = 'sk-edges-0123456789abcdef';
const QUESTION = loadQuestions()[7];
const cleanups: Array<() => Promise<unknown>> = [];
let db: TestDatabase;
let sim: SimulatorHandle;

async function stack(
  options: { registry?: ReturnType<typeof simulatorRegistry>; database?: TestDatabase } = {},
  gatewayOptions: Partial<Parameters<typeof createGateway>[0]> = {},
): Promise<{ url: string; gateway: Gateway; router: Router }> {
  const database = options.database ?? db;
  const router = await createRouter({
    database,
    connectionString: database.connectionString,
    providers: { registry: options.registry ?? simulatorRegistry(sim.url), breaker: false },
    cache: { pollIntervalMs: 200 },
  });
  const gateway = createGateway({ router, auth: { keys: [KEY] }, ...gatewayOptions });
  const url = await gateway.listen({ port: 0 });
  cleanups.push(
    () => router.close(),
    () => gateway.close(),
  );
  const deadline = Date.now() + 5_000;
  while (!router.state('bot') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return { url, gateway, router };
}

beforeAll(async () => {
  db = await createTestDatabase();
  sim = await startSimulator({ scenario: { default: { latencyMs: { median: 2 }, accuracy: 0.95 } } });
  await createRoute(
    db.pool,
    { name: 'bot', blue: { target: { provider: 'openai', model: 'gpt-4o' }, fallbacks: [] } },
    { actor: 'test', reason: 'test' },
  );
}, 60_000);

afterAll(async () => {
  for (const fn of cleanups.reverse()) await fn().catch(() => {});
  await sim?.close();
  await db?.close();
});

/** A raw TCP client: writes `chunks` (one every `everyMs`), collects what comes back, resolves on close. */
function rawClient(url: string, chunks: string[], everyMs = 0) {
  const { port } = new URL(url);
  const socket = net.connect(Number(port), '127.0.0.1');
  let received = '';
  const t0 = Date.now();
  socket.on('data', (d) => (received += d.toString()));
  socket.on('error', () => {});
  const closed = new Promise<{ afterMs: number; received: string }>((resolve) =>
    socket.on('close', () => resolve({ afterMs: Date.now() - t0, received })),
  );
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || i >= chunks.length) return clearInterval(timer);
    socket.write(chunks[i++]);
  }, everyMs);
  return { closed, socket, stop: () => clearInterval(timer) };
}

const partialHeaders = 'POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n';

describe('gateway edges', () => {
  it('disconnects an idle client that never finishes its headers, and a slowloris that trickles them', async () => {
    const { url } = await stack({}, { limits: { headersTimeoutMs: 1_000, requestTimeoutMs: 2_000 } });
    // Idle: connects, sends half a request line and nothing more.
    const idle = rawClient(url, [partialHeaders]);
    // Slowloris: one header line every 200 ms, for ever (each byte would reset a plain idle timer).
    const slow = rawClient(
      url,
      [partialHeaders, ...Array.from({ length: 200 }, (_, i) => `x-pad-${i}: y\r\n`)],
      200,
    );
    const [a, b] = await Promise.all([idle.closed, slow.closed]);
    slow.stop();
    for (const r of [a, b]) {
      expect(r.afterMs).toBeGreaterThanOrEqual(900);
      expect(r.afterMs).toBeLessThan(4_000);
    }
    expect(a.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(a.received).toContain('"code":"request_timeout"');
  }, 20_000);

  it('disconnects a client whose body never arrives in full', async () => {
    const { url } = await stack({}, { limits: { headersTimeoutMs: 1_000, requestTimeoutMs: 1_500 } });
    const body = JSON.stringify({ model: 'bot', messages: [{ role: 'user', content: 'hi' }] });
    const slowBody = rawClient(url, [
      'POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n' +
        `authorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n` +
        body.slice(0, 10),
    ]);
    const r = await slowBody.closed;
    expect(r.afterMs).toBeGreaterThanOrEqual(1_000);
    expect(r.afterMs).toBeLessThan(5_000);
  }, 20_000);

  it('refuses oversized headers (431) and routing keys (400) with OpenAI-style bodies', async () => {
    const { url } = await stack();
    const big = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'x-pad': 'y'.repeat(20 * 1024) },
      body: '{}',
    });
    expect(big.status).toBe(431);
    expect(await big.json()).toEqual({
      error: {
        message: 'the request headers are too large',
        type: 'invalid_request_error',
        param: null,
        code: 'headers_too_large',
      },
    });
    const client = new OpenAI({ apiKey: KEY, baseURL: `${url}/v1`, maxRetries: 0 });
    const long = await client.chat.completions
      .create(
        { model: 'bot', messages: [{ role: 'user', content: QUESTION.prompt }] },
        { headers: { 'x-rollout-key': 'u'.repeat(257) } },
      )
      .catch((e: unknown) => e);
    expect(long).toBeInstanceOf(OpenAI.BadRequestError);
    expect((long as Error).message).toContain('longer than 256 characters');
    expect(((long as InstanceType<typeof OpenAI.BadRequestError>).error as { param: string }).param).toBe(
      'x-rollout-key',
    );
    const ok = await client.chat.completions.create(
      { model: 'bot', messages: [{ role: 'user', content: QUESTION.prompt }] },
      { headers: { 'x-rollout-key': 'u'.repeat(256) } },
    );
    expect(ok.choices[0].message.content).toBeTruthy();
  });

  it('error bodies name no internal host, port or environment variable', async () => {
    // Providers at a port nobody listens on, and providers whose key variable is not set.
    const deadPort = await freePort();
    const dead = await stack({ registry: simulatorRegistry(`http://127.0.0.1:${deadPort}`) });
    const noKeys = await stack({ registry: simulatorRegistry(sim.url, { keys: 'env', env: {} }) });
    for (const [url, status] of [
      [dead.url, 502],
      [noKeys.url, 502],
    ] as const) {
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'bot', messages: [{ role: 'user', content: QUESTION.prompt }] }),
      });
      expect(res.status).toBe(status);
      const text = await res.text();
      expect(JSON.parse(text).error.message).toMatch(/^route "bot": /);
      for (const leak of [
        '127.0.0.1',
        String(deadPort),
        new URL(sim.url).port,
        'OPENAI_API_KEY',
        'localhost',
      ])
        expect(text).not.toContain(leak);
    }
  });

  it('/healthz says postgres is unreachable without its error text', async () => {
    const doomed = await createTestDatabase();
    const { url } = await stack({ database: doomed });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    // The database disappears under the running gateway.
    const admin = new pg.Client({ connectionString: process.env.DATABASE_URL ?? db.connectionString });
    await admin.connect();
    await admin.query(`DROP DATABASE ${doomed.name} WITH (FORCE)`);
    await admin.end();
    // Still 200 (it serves from the routing state it has), degraded, with the reason in plain words.
    const res = await fetch(`${url}/healthz`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({
      status: 'degraded',
      reasons: expect.arrayContaining(['postgres unreachable']),
    });
    const pgUrl = new URL(doomed.connectionString);
    for (const leak of [doomed.name, 'does not exist', 'terminat', pgUrl.hostname, `:${pgUrl.port}`])
      expect(text).not.toContain(leak);
  }, 30_000);

  it('serves /metrics and /healthz only on the admin listener when asked to', async () => {
    const { url, gateway } = await stack({}, { separateAdmin: true });
    const adminUrl = await gateway.listenAdmin({ port: 0 });
    expect((await fetch(`${url}/metrics`)).status).toBe(404);
    expect((await fetch(`${url}/healthz`)).status).toBe(404);
    const metrics = await fetch(`${adminUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('model_rollout_');
    expect((await fetch(`${adminUrl}/healthz`)).status).toBe(200);
    // The public API is not on the admin listener.
    expect((await fetch(`${adminUrl}/v1/routes/bot`)).status).toBe(404);
  });
});
