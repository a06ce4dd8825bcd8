import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatorRegistry, type ProviderRegistry } from '../src/data-plane/providers';
import {
  RouteCallError,
  RouteNotFoundError,
  createRouter,
  type Router,
  type RouterOptions,
} from '../src/data-plane/router/router';
import { loadQuestions, startSimulator, type SimulatorHandle } from '../src/tooling/simulator';
import { openDatabase } from '../src/store/database';
import { changeRoute, createRoute, getRoute, type CreateRouteInput } from '../src/store/routing-state';
import { createTestDatabase, type TestDatabase } from './helpers/db';

/** The router in-process: real Postgres (routing state, NOTIFY, events) and the simulator over HTTP. */

const CTX = { actor: 'test', reason: 'test' };
const QUESTION = loadQuestions()[0];
const messages = [{ role: 'user' as const, content: QUESTION.prompt }];
const t = (provider: string, model: string, params?: { maxTokens?: number }) => ({
  provider,
  model,
  ...(params ? { params } : {}),
});

let db: TestDatabase;
let sim: SimulatorHandle;
let registry: ProviderRegistry;
let router: Router;
const routers: Router[] = [];

async function newRouter(options: Partial<RouterOptions> = {}): Promise<Router> {
  const r = await createRouter({
    database: db,
    providers: { registry, perAttemptTimeoutMs: 2000 },
    capture: { enabled: true },
    ...options,
  });
  routers.push(r);
  return r;
}

async function until(cond: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
  return performance.now() - t0;
}

async function route(input: CreateRouteInput, ...rs: Router[]) {
  await createRoute(db.pool, input, CTX);
  for (const r of rs.length ? rs : [router]) await until(() => r.state(input.name) !== undefined, 2000);
}

async function events(requestId: string) {
  await router.flush();
  return (await db.pool.query('SELECT * FROM request_events WHERE request_id = $1 ORDER BY id', [requestId]))
    .rows;
}

beforeAll(async () => {
  db = await createTestDatabase();
  sim = await startSimulator({ scenario: { default: { latencyMs: { median: 1, p99: 2 }, accuracy: 1 } } });
  registry = simulatorRegistry(sim.url);
  router = await newRouter();
});

afterAll(async () => {
  for (const r of routers) await r.close();
  await sim?.close();
  await db?.close();
});

describe('router', () => {
  it('answers from the stable slot and records one event with the decision', async () => {
    await route({ name: 'r1', blue: { target: t('openai', 'gpt-4o-mini'), fallbacks: [] } });
    const result = await router.complete('r1', { messages, key: 'user-1', referenceId: QUESTION.id });
    expect(result).toMatchObject({
      route: 'r1',
      tag: 'stable',
      slot: 'blue',
      target: 'openai:gpt-4o-mini',
      fallbackDepth: 0,
      routingVersion: 1,
    });
    expect(result.text).toContain(QUESTION.reference);
    expect(result.shadow).toBeUndefined();
    expect(result.upstream).toBeUndefined(); // keepRaw is off by default
    const [e] = await events(result.requestId);
    expect(e).toMatchObject({
      tag: 'stable',
      target: 'openai:gpt-4o-mini',
      reference_id: QUESTION.id,
      prompt: messages,
      answer: result.text,
    });
  });

  it('with keepRaw, hands back the bytes of the target that answered, after a fallback too', async () => {
    sim.setBehaviour('raw-500', { errorRate: 1, latencyMs: { median: 1 } });
    const keeping = await newRouter({ keepRaw: true });
    await route(
      { name: 'raw', blue: { target: t('openai', 'raw-500'), fallbacks: [t('openai', 'gpt-4o')] } },
      keeping,
    );
    const result = await keeping.complete('raw', { messages, key: 'user-raw' });
    expect(result).toMatchObject({ target: 'openai:gpt-4o', fallbackDepth: 1 });
    expect(result.upstream?.contentType).toMatch(/^application\/json/);
    const sent = JSON.parse(result.upstream!.body.toString('utf8'));
    expect(sent.model).toBe('gpt-4o');
    expect(sent.choices[0].message.content).toBe(result.text);
  });

  it('throws RouteNotFoundError for an unknown route (stream: at once)', async () => {
    await expect(router.complete('nope', { messages })).rejects.toBeInstanceOf(RouteNotFoundError);
    expect(() => router.stream('nope', { messages })).toThrow(RouteNotFoundError);
  });

  it('assigns anonymous requests per request with the random source', async () => {
    await route({
      name: 'anon',
      blue: { target: t('openai', 'gpt-4o-mini'), fallbacks: [] },
      green: { target: t('deepseek', 'deepseek-chat'), fallbacks: [] },
      canaryBps: 3000,
    });
    let next = 0.1;
    const r = await newRouter({ random: () => next, events: false });
    await until(() => r.state('anon') !== undefined, 2000);
    expect((await r.complete('anon', { messages })).tag).toBe('canary'); // 0.1 * 10000 < 3000
    next = 0.5;
    expect((await r.complete('anon', { messages })).tag).toBe('stable');
  });

  it("lets the target's own params win over the caller's", async () => {
    await route({
      name: 'params',
      blue: { target: t('openai', 'gpt-4o-mini', { maxTokens: 5 }), fallbacks: [] },
    });
    const pinned = await router.complete('params', { messages, params: { maxTokens: 2 } });
    expect(pinned.result.usage.outputTokens).toBe(5);
    await route({ name: 'params-free', blue: { target: t('openai', 'gpt-4o-mini'), fallbacks: [] } });
    const free = await router.complete('params-free', { messages, params: { maxTokens: 3 } });
    expect(free.result.usage.outputTokens).toBe(3);
    expect(free.result.finishReason).toBe('length');
  });

  it('streams deltas naming the answering target, and records the stream once', async () => {
    sim.setBehaviour('stream-down', {
      errorRate: 1,
      errorKinds: { overloaded: 1 },
      latencyMs: { median: 1 },
    });
    await route({
      name: 'st',
      blue: { target: t('openai', 'stream-down'), fallbacks: [t('anthropic', 'claude-sonnet-4')] },
    });
    const stream = router.stream('st', { messages });
    expect(stream.decision).toMatchObject({ route: 'st', tag: 'stable', slot: 'blue' });
    let text = '';
    const targets = new Set<string>();
    let done;
    for await (const e of stream) {
      if (e.type === 'delta') {
        text += e.text;
        targets.add(e.target);
      } else if (e.type === 'done') done = e.result;
      else throw e.error;
    }
    expect([...targets]).toEqual(['anthropic:claude-sonnet-4']);
    expect(done).toMatchObject({ target: 'anthropic:claude-sonnet-4', fallbackDepth: 1, text });
    expect(await events(stream.decision.requestId)).toMatchObject([
      { target: 'anthropic:claude-sonnet-4', fallback_depth: 1, answer: text },
    ]);
  });

  it('records a stream the consumer abandons as cancelled', async () => {
    sim.setBehaviour('slow-stream', { streamChunkDelayMs: 20, outputTokens: 60 });
    await route({ name: 'abandon', blue: { target: t('openai', 'slow-stream'), fallbacks: [] } });
    const stream = router.stream('abandon', { messages });
    for await (const e of stream) {
      if (e.type === 'delta') break;
    }
    expect(await events(stream.decision.requestId)).toMatchObject([
      { target: 'openai:slow-stream', error_class: 'client_cancelled' },
    ]);
  });

  it('throws RouteCallError with the decision when the chain is exhausted', async () => {
    sim.setBehaviour('always-500', { errorRate: 1, latencyMs: { median: 1 } });
    await route({ name: 'broken', blue: { target: t('openai', 'always-500'), fallbacks: [] } });
    const error = await router.complete('broken', { messages, requestId: 'req-broken-1' }).catch((e) => e);
    expect(error).toBeInstanceOf(RouteCallError);
    expect(error).toMatchObject({
      target: 'openai:always-500',
      errorClass: 'server_error',
      decision: { route: 'broken', requestId: 'req-broken-1' },
    });
    expect(await events('req-broken-1')).toMatchObject([
      { error_class: 'server_error', target: 'openai:always-500' },
    ]);
  });

  it('does not capture prompts and answers unless enabled', async () => {
    const plain = await newRouter({ capture: { enabled: false } });
    await until(() => plain.state('r1') !== undefined, 2000);
    const result = await plain.complete('r1', { messages });
    await plain.flush();
    const [e] = await events(result.requestId);
    expect(e.prompt).toBeNull();
    expect(e.answer).toBeNull();
  });
});

describe('shadow', () => {
  it('records the shadow and its pair, and exposes the outcome', async () => {
    await route({
      name: 'sh',
      blue: { target: t('openai', 'gpt-4o-mini'), fallbacks: [] },
      green: { target: t('anthropic', 'claude-sonnet-4'), fallbacks: [t('openai', 'gpt-4o')] },
      shadowRate: 1,
    });
    const result = await router.complete('sh', { messages });
    expect(await result.shadow).toMatchObject({
      outcome: 'ok',
      target: 'anthropic:claude-sonnet-4',
      paired: true,
    });
    const rows = await events(result.requestId);
    expect(rows.map((r) => [r.tag, r.slot, r.target])).toEqual([
      ['stable', 'blue', 'openai:gpt-4o-mini'],
      ['shadow', 'green', 'anthropic:claude-sonnet-4'],
    ]);
    const pairs = await db.pool.query(
      'SELECT stable_event_id, shadow_event_id FROM shadow_comparisons WHERE request_id = $1',
      [result.requestId],
    );
    expect(pairs.rows).toEqual([{ stable_event_id: rows[0].id, shadow_event_id: rows[1].id }]);

    // A streamed stable request is shadowed the same way (the shadow itself is a plain completion).
    const stream = router.stream('sh', { messages });
    for await (const e of stream) if (e.type === 'error') throw e.error;
    expect(await stream.shadow).toMatchObject({ outcome: 'ok', paired: true });
  });

  it('skips (and counts) shadows beyond the concurrency cap instead of queueing them', async () => {
    sim.setBehaviour('shadow-slow', { latencyMs: { median: 200, p99: 210 } });
    await route({
      name: 'cap',
      blue: { target: t('openai', 'gpt-4o-mini'), fallbacks: [] },
      green: { target: t('openai', 'shadow-slow'), fallbacks: [] },
      shadowRate: 1,
    });
    const capped = await newRouter({ shadow: { maxConcurrent: 2, timeoutMs: 1000 } });
    await until(() => capped.state('cap') !== undefined, 2000);
    const results = await Promise.all(Array.from({ length: 6 }, () => capped.complete('cap', { messages })));
    const outcomes = await Promise.all(results.map((r) => r.shadow!));
    expect(outcomes.filter((o) => o.outcome === 'skipped')).toHaveLength(4);
    expect(outcomes.filter((o) => o.outcome === 'ok')).toHaveLength(2);
    expect((await capped.health()).shadow).toEqual({ inFlight: 0, skipped: 4 });
    expect(await capped.metrics.text()).toMatch(
      /model_rollout_shadow_calls_total\{route="cap",target="openai:shadow-slow",outcome="skipped"\} 4/,
    );
  });
});

describe('propagation', () => {
  it('three router instances see a routing change within one second (LISTEN/NOTIFY)', async () => {
    const databases = await Promise.all(
      [0, 1, 2].map(() => openDatabase({ url: db.connectionString, poolSize: 2 })),
    );
    // Polling far slower than the bound: only NOTIFY can make it in time.
    const three = await Promise.all(
      databases.map((database) => newRouter({ database, cache: { pollIntervalMs: 60_000 }, events: false })),
    );
    try {
      await route(
        {
          name: 'prop',
          blue: { target: t('openai', 'gpt-4o-mini'), fallbacks: [] },
          green: { target: t('deepseek', 'deepseek-chat'), fallbacks: [] },
        },
        ...three,
      );
      for (let flip = 0; flip < 5; flip++) {
        const before = (await getRoute(db.pool, 'prop'))!;
        const t0 = performance.now();
        const after = await changeRoute(db.pool, 'prop', {
          ...CTX,
          expectedVersion: before.version,
          patch: { stableSlot: before.stableSlot === 'blue' ? 'green' : 'blue' },
        });
        await until(() => three.every((r) => r.state('prop')!.version === after.version), 1000);
        expect(performance.now() - t0).toBeLessThan(1000);
        const expected = after.stableSlot === 'green' ? 'deepseek:deepseek-chat' : 'openai:gpt-4o-mini';
        for (const r of three) expect((await r.complete('prop', { messages })).target).toBe(expected);
      }
      for (const r of three) expect((await r.health()).routing.notify).toBe('listening');
    } finally {
      for (const r of three) {
        await r.close();
        routers.splice(routers.indexOf(r), 1);
      }
      for (const d of databases) await d.close();
    }
  });
});
