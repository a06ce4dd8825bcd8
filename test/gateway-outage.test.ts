import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway } from '../src/data-plane/gateway/server';
import { simulatorRegistry } from '../src/data-plane/providers';
import { createRouter, type Router } from '../src/data-plane/router/router';
import { startSimulator, type SimulatorHandle } from '../src/tooling/simulator';
import { openDatabase, type Database } from '../src/store/database';
import { changeRoute, createRoute, getRoute } from '../src/store/routing-state';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { startTcpProxy, viaProxy, type TcpProxy } from './helpers/tcp-proxy';

/**
 * The data plane through a Postgres that stops answering (a blackhole: no error, no reset, nothing), for
 * longer than every read, ping and insert deadline: the gateway keeps serving the routing state it had,
 * `/healthz` stays 200 and says it is stale with growing staleness, events buffer until the byte bound and
 * are then dropped with a count; once Postgres answers again, staleness falls back to about zero, the
 * change made meanwhile is served, and the buffered events land. Real gateway, real Postgres behind a TCP
 * proxy, the real `openai` client, the simulator over HTTP.
 */

const KEY = 'sk-outage-test-0123456789';
const CTX = { actor: 'test', reason: 'outage test' };
const OUTAGE_MS = 25_000;
const BUFFER_BYTES = 256 * 1024;
const target = (t: string) => ({
  target: { provider: t.slice(0, t.indexOf(':')), model: t.slice(t.indexOf(':') + 1) },
  fallbacks: [],
});
// A long, captured prompt (~20 KB): a dozen of them fill the 256 KiB event buffer.
const longPrompt = (i: number) =>
  `Here is the maintenance log of pump station ${i}; list the three faults that recur most often.\n` +
  'Valve 7 stuck half open after the night flush; reset by hand, pressure back to 4.2 bar. '.repeat(230);

interface Health {
  status: string;
  serving: boolean;
  stale: boolean;
  stalenessSeconds: number | null;
  reasons: string[];
  routing: { notify: string };
  events: { buffered: number; bufferedBytes: number; dropped: number; droppedBufferFull: number };
}

let db: TestDatabase;
let sim: SimulatorHandle;
let proxy: TcpProxy;
let database: Database;
let router: Router;
let url: string;
let client: OpenAI;
const cleanups: (() => Promise<unknown>)[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: () => Promise<T | undefined | false>, timeoutMs: number, label: string) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await what();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`);
    await sleep(100);
  }
}
const health = async () => {
  const res = await fetch(`${url}/healthz`);
  return { status: res.status, body: (await res.json()) as Health };
};
const call = async (user: string, content: string) => {
  const { response } = await client.chat.completions
    .create({ model: 'outage', messages: [{ role: 'user', content }], user })
    .withResponse();
  return {
    status: response.status,
    tag: response.headers.get('x-rollout-tag'),
    target: response.headers.get('x-rollout-target'),
    requestId: response.headers.get('x-request-id')!,
  };
};

beforeAll(async () => {
  db = await createTestDatabase();
  const real = new URL(db.connectionString);
  proxy = await startTcpProxy({ host: real.hostname, port: Number(real.port || 5432) });
  database = await openDatabase({ url: viaProxy(db.connectionString, proxy), poolSize: 4 });
  sim = await startSimulator({
    scenario: { default: { latencyMs: { median: 15, p99: 40 }, accuracy: 0.9 } },
  });
  await createRoute(
    db.pool,
    {
      name: 'outage',
      blue: target('openai:gpt-4o-mini'),
      green: target('deepseek:deepseek-chat'),
      canaryBps: 5000,
    },
    CTX,
  );
  router = await createRouter({
    database,
    providers: { registry: simulatorRegistry(sim.url), perAttemptTimeoutMs: 5000 },
    capture: { enabled: true },
    keepRaw: true,
    // Deadlines well inside the outage: pings and reads give up after 2 s, inserts after 3 s.
    cache: {
      pollIntervalMs: 500,
      livenessIntervalMs: 500,
      pingTimeoutMs: 2000,
      readTimeoutMs: 2000,
      reconnectMaxMs: 1000,
      staleAfterMs: 3000,
    },
    events: { maxBufferBytes: BUFFER_BYTES, queryTimeoutMs: 3000, retryMaxMs: 500 },
  });
  const gateway = createGateway({ router, auth: { keys: [KEY] } });
  url = await gateway.listen({ port: 0 });
  cleanups.push(async () => {
    await gateway.close();
    await router.close();
  });
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0, timeout: 20_000 });
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await database?.close().catch(() => {});
  await proxy?.close();
  await sim?.close();
  await db?.close();
});

describe('Postgres blackholed under a running gateway', () => {
  it('serves the last routing state, reports growing staleness, bounds events in bytes, and recovers', async () => {
    const users = Array.from({ length: 10 }, (_, i) => `station-${i}`);
    const before = await Promise.all(users.map((u) => call(u, 'What does a pressure relief valve do?')));
    expect(new Set(before.map((b) => b.tag))).toEqual(new Set(['stable', 'canary']));
    await router.flush();
    const fresh = await health();
    expect(fresh.status).toBe(200);
    expect(fresh.body).toMatchObject({ status: 'ok', stale: false, serving: true });
    expect(fresh.body.stalenessSeconds).toBeLessThan(2);

    proxy.set('blackhole');
    const cutAt = Date.now();
    // A change the gateway cannot see while the network is down (made on the direct connection).
    const current = (await getRoute(db.pool, 'outage'))!;
    await changeRoute(db.pool, 'outage', {
      expectedVersion: current.version,
      patch: { canaryBps: 0 },
      actor: 'test',
      reason: 'during the outage',
    });

    // Past the stale threshold (3 s) and the ping/read deadlines (2 s): stale, still 200, still serving.
    const first = await until(
      async () => {
        const h = await health();
        return h.body.stale ? h : undefined;
      },
      15_000,
      'healthz to say stale',
    );
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ status: 'degraded', serving: true, stale: true });
    expect(first.body.reasons).toContain('routing state is stale');

    // Served from the state the gateway had: the same sticky arms as before the cut (the canary share set
    // to 0 meanwhile is not seen), with long captured prompts that fill the event buffer.
    const during: Awaited<ReturnType<typeof call>>[] = [];
    for (let round = 0; round < 4; round++) {
      during.push(...(await Promise.all(users.map((u, i) => call(u, longPrompt(round * 10 + i))))));
    }
    expect(during.every((d) => d.status === 200)).toBe(true);
    for (let i = 0; i < during.length; i++) expect(during[i].tag).toBe(before[i % 10].tag);

    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^model_rollout_routing_stale 1$/m);
    expect(metrics).toMatch(/^model_rollout_events_dropped [1-9]\d*$/m);

    // Wait out the rest of the outage; staleness keeps growing with it.
    await sleep(Math.max(0, cutAt + OUTAGE_MS - Date.now()));
    const late = await health();
    expect(late.status).toBe(200);
    expect(late.body.stale).toBe(true);
    expect(late.body.stalenessSeconds!).toBeGreaterThan(first.body.stalenessSeconds! + 10);
    expect(late.body.stalenessSeconds!).toBeGreaterThan((OUTAGE_MS - 2000) / 1000);
    // 40 prompts of ~20 KB into 256 KiB: some buffered, the rest dropped for want of room and counted.
    const { events } = late.body;
    expect(events.bufferedBytes).toBeLessThanOrEqual(BUFFER_BYTES);
    expect(events.buffered).toBeGreaterThan(0);
    expect(events.droppedBufferFull).toBeGreaterThan(0);
    expect(events.dropped).toBe(events.droppedBufferFull);

    proxy.set('up');
    const recovered = await until(
      async () => {
        const h = await health();
        return !h.body.stale && h.body.routing.notify === 'listening' ? h : undefined;
      },
      30_000,
      'healthz to be fresh again',
    );
    expect(recovered.status).toBe(200);
    expect(recovered.body.stalenessSeconds).toBeLessThan(2);
    // The change made during the outage is served now: no canary.
    await until(async () => router.state('outage')?.canaryBps === 0, 10_000, 'the new routing state');
    const after = await Promise.all(users.map((u) => call(u, 'And a check valve?')));
    expect(after.every((a) => a.tag === 'stable')).toBe(true);

    // Everything buffered lands; every outage request is either in Postgres or counted as dropped.
    await router.flush();
    const stats = (await router.health()).events!;
    expect(stats.buffered).toBe(0);
    expect(stats.bufferedBytes).toBe(0);
    const { rows } = await db.pool.query<{ request_id: string; prompt: unknown }>(
      'SELECT request_id, prompt FROM request_events WHERE request_id = ANY($1)',
      [during.map((d) => d.requestId)],
    );
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.length + stats.dropped).toBe(during.length);
    expect(rows.every((r) => JSON.stringify(r.prompt).includes('pump station'))).toBe(true);
  }, 120_000);
});
