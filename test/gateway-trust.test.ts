/**
 * Issue 13, findings 2 and 4 (the actor): clients cannot steer the evidence a rollout acts on. End to end
 * through the gateway, the router, the simulator and Postgres, with named keys:
 * - request ids are the gateway's; a client's `x-request-id` is recorded beside the event, never as its id;
 * - feedback only for a request served to the same key, within the window, once (PUT replaces);
 * - every event names the key that made it (the actor);
 * - client-caused failures (hang-ups, a max_tokens no model can write in time) never count in the canary
 *   statistics, and never open a circuit breaker; upstream 400s are not errors either, but they are counted
 *   per arm as refusals, for the policy to compare with stable's (issue 19: a candidate that refuses what
 *   stable serves is the worse model; test/refusals.test.ts rolls one back).
 */
import crypto from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKeyStore } from '../src/data-plane/gateway/api-keys';
import { createGateway, type Gateway } from '../src/data-plane/gateway/server';
import { simulatorRegistry } from '../src/data-plane/providers';
import { createRouter, type Router } from '../src/data-plane/router/router';
import { startSimulator, type SimulatorHandle } from '../src/tooling/simulator';
import { createEvaluationActivities } from '../activities/statistics';
import { ensureEventPartitions } from '../src/store/event-writer';
import { armStats } from '../src/store/arm-statistics';
import { createRoute, getRoute } from '../src/store/routing-state';
import { createTestDatabase, type TestDatabase } from './helpers/db';

const KEY_A = 'sk-alpha-0123456789abcdef';
const KEY_B = 'sk-bravo-0123456789abcdef';
const KEY_EVAL = 'sk-evals-0123456789abcdef';
const PROMPT = 'Name three kinds of clouds you might see on a summer afternoon.';

let db: TestDatabase;
let sim: SimulatorHandle;
let router: Router;
let gateway: Gateway;
let url: string;
const started = Date.now();

beforeAll(async () => {
  db = await createTestDatabase();
  sim = await startSimulator({ scenario: { default: { latencyMs: { median: 5 } } } });
  router = await createRouter({
    database: db,
    connectionString: db.connectionString,
    // A breaker that opens after 3 failures: client mistakes must never open it.
    providers: {
      registry: simulatorRegistry(sim.url),
      breaker: { failureThreshold: 3, cooldownMs: 60_000 },
      perAttemptTimeoutMs: 600,
    },
    cache: { pollIntervalMs: 100 },
    events: { flushIntervalMs: 20 },
  });
  const keys = JSON.stringify({
    keys: [
      { name: 'team-alpha', key: KEY_A, routes: ['*'] },
      { name: 'team-bravo', key: KEY_B, routes: ['*'] },
      { name: 'evals', key: KEY_EVAL, routes: ['*'], armHeaders: true, evaluation: true },
    ],
  });
  const file = `${await import('node:os').then((os) => os.tmpdir())}/mr-trust-${crypto.randomBytes(4).toString('hex')}.json`;
  (await import('node:fs')).writeFileSync(file, keys, { mode: 0o600 });
  gateway = createGateway({ router, auth: { store: createApiKeyStore({ file, watch: false }) } });
  url = await gateway.listen({ port: 0 });
  const ctx = { actor: 'test', reason: 'test' };
  await createRoute(
    db.pool,
    { name: 'plain', blue: { target: { provider: 'openai', model: 'gpt-4o' }, fallbacks: [] } },
    ctx,
  );
  // Every request on `canary-bot` goes to the candidate (its own simulated model, so behaviours are its own).
  await createRoute(
    db.pool,
    {
      name: 'canary-bot',
      blue: { target: { provider: 'openai', model: 'steady-stable' }, fallbacks: [] },
      green: { target: { provider: 'openai', model: 'trust-candidate' }, fallbacks: [] },
      canaryBps: 10_000,
    },
    ctx,
  );
  await createRoute(
    db.pool,
    {
      name: 'arms-bot',
      blue: { target: { provider: 'openai', model: 'arm-stable' }, fallbacks: [] },
      green: { target: { provider: 'openai', model: 'arm-candidate' }, fallbacks: [] },
      canaryBps: 10_000,
    },
    ctx,
  );
  const deadline = Date.now() + 10_000;
  while (
    (!router.state('canary-bot') || !router.state('plain') || !router.state('arms-bot')) &&
    Date.now() < deadline
  )
    await new Promise((r) => setTimeout(r, 20));
}, 60_000);

afterAll(async () => {
  await gateway?.close();
  await router?.close();
  await sim?.close();
  await db?.close();
});

const client = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries: 0 });

async function ask(apiKey: string, headers: Record<string, string> = {}) {
  const { response } = await client(apiKey)
    .chat.completions.create({ model: 'plain', messages: [{ role: 'user', content: PROMPT }] }, { headers })
    .withResponse();
  return response.headers.get('x-request-id')!;
}

function feedback(apiKey: string, body: object, method = 'POST') {
  return fetch(`${url}/v1/feedback`, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

function expectOpenAIError(body: unknown, code: string) {
  expect(body).toEqual({
    error: { message: expect.any(String), type: expect.any(String), param: 'request_id', code },
  });
}

async function event(requestId: string) {
  await router.flush();
  const { rows } = await db.pool.query(
    `SELECT request_id, client_request_id, caller, error_class FROM request_events
      WHERE request_id = $1 AND tag <> 'shadow'`,
    [requestId],
  );
  return rows[0] as {
    request_id: string;
    client_request_id: string | null;
    caller: string;
    error_class: string;
  };
}

describe('request ids and feedback belong to the key that was served', () => {
  it('feedback for another key’s request is refused with 404, like a request never served', async () => {
    const requestId = await ask(KEY_A);
    const foreign = await feedback(KEY_B, { request_id: requestId, score: 1 });
    expect(foreign.status).toBe(404);
    expectOpenAIError(await foreign.json(), 'request_not_found');
    const unknown = await feedback(KEY_B, { request_id: crypto.randomUUID(), score: 1 });
    expect(unknown.status).toBe(404);
    expectOpenAIError(await unknown.json(), 'request_not_found');
    const own = await feedback(KEY_A, { request_id: requestId, score: 5 });
    expect(own.status).toBe(201);
    const { rows } = await db.pool.query('SELECT score, caller FROM feedback WHERE request_id = $1', [
      requestId,
    ]);
    expect(rows).toEqual([{ score: 5, caller: 'team-alpha' }]);
  });

  it('the event names the key that made the request (the actor), never the key itself', async () => {
    const requestId = await ask(KEY_B);
    const e = await event(requestId);
    expect(e.caller).toBe('team-bravo');
    const { rows } = await db.pool.query('SELECT row_to_json(request_events)::text AS j FROM request_events');
    for (const r of rows as { j: string }[]) {
      expect(r.j).not.toContain(KEY_A);
      expect(r.j).not.toContain(KEY_B);
    }
  });

  it('a colliding client request id cannot touch another request’s feedback', async () => {
    const shared = `order-${crypto.randomBytes(3).toString('hex')}`;
    const idA = await ask(KEY_A, { 'x-request-id': shared });
    const idB = await ask(KEY_B, { 'x-request-id': shared });
    expect(idA).not.toBe(shared);
    expect(idB).not.toBe(shared);
    expect(idA).not.toBe(idB);
    expect((await event(idA)).client_request_id).toBe(shared);
    expect((await event(idB)).client_request_id).toBe(shared);
    // Bravo aims at the id it chose: nothing was served under it.
    const aimed = await feedback(KEY_B, { request_id: shared, thumbs: 'down' });
    expect(aimed.status).toBe(404);
    expect((await feedback(KEY_B, { request_id: idB, thumbs: 'down' })).status).toBe(201);
    expect((await feedback(KEY_A, { request_id: idA, thumbs: 'up' })).status).toBe(201);
    const { rows } = await db.pool.query(
      'SELECT request_id, thumbs, caller FROM feedback WHERE request_id = ANY($1) ORDER BY caller',
      [[idA, idB, shared]],
    );
    expect(rows).toEqual([
      { request_id: idA, thumbs: 'up', caller: 'team-alpha' },
      { request_id: idB, thumbs: 'down', caller: 'team-bravo' },
    ]);
  });

  it('feedback is taken once (PUT replaces it) and only within the window', async () => {
    const requestId = await ask(KEY_A);
    expect((await feedback(KEY_A, { request_id: requestId, score: 2 })).status).toBe(201);
    const again = await feedback(KEY_A, { request_id: requestId, score: 5 });
    expect(again.status).toBe(409);
    expectOpenAIError(await again.json(), 'feedback_exists');
    const put = await feedback(KEY_A, { request_id: requestId, score: 4 }, 'PUT');
    expect(put.status).toBe(200);
    expect((await feedback(KEY_B, { request_id: requestId, score: 1 }, 'PUT')).status).toBe(404);
    const { rows } = await db.pool.query(
      'SELECT score, updated_at IS NOT NULL AS updated FROM feedback WHERE request_id = $1',
      [requestId],
    );
    expect(rows).toEqual([{ score: 4, updated: true }]);

    // Two days later (the default window is 24 h) the answer takes no more feedback.
    const old = await ask(KEY_A);
    await event(old);
    await ensureEventPartitions(db.pool, Date.now() - 2 * 86_400_000, Date.now()); // the day it moves to
    await db.pool.query(
      `UPDATE request_events SET created_at = now() - interval '2 days' WHERE request_id = $1`,
      [old],
    );
    const late = await feedback(KEY_A, { request_id: old, score: 3 });
    expect(late.status).toBe(400);
    expectOpenAIError(await late.json(), 'feedback_window_closed');
  });
});

describe('client-caused failures never count against the model; refusals are counted per arm', () => {
  const canaryStats = () =>
    router
      .flush()
      .then(() =>
        armStats(db.pool, { route: 'canary-bot', tag: 'canary', fromMs: started, slowThresholdMs: 300 }),
      );
  const breaker = async () =>
    (await router.health()).breakers.find((b) => b.target === 'openai:trust-candidate');

  it('hang-ups and an impossible max_tokens leave the canary statistics and breaker at zero, upstream 400s count only as the arm’s refusals; a 500 moves errors and breaker', async () => {
    const body = { model: 'canary-bot', messages: [{ role: 'user' as const, content: PROMPT }] };
    // The candidate refuses the request as malformed (400), five times.
    sim.setBehaviour('trust-candidate', { errorRate: 1, errorKinds: { bad_request: 1 } });
    for (let i = 0; i < 5; i++) {
      const err = await client(KEY_A)
        .chat.completions.create(body)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    }
    // Slow answers: clients hang up, and a max_tokens of 100 000 cannot be written within 600 ms.
    sim.setBehaviour('trust-candidate', { errorRate: 0, latencyMs: { median: 1500, p99: 1500 } });
    for (let i = 0; i < 3; i++) {
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 150);
      const err = await client(KEY_A)
        .chat.completions.create(body, { signal: abort.signal })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.APIUserAbortError);
    }
    for (let i = 0; i < 3; i++) {
      const err = await client(KEY_A)
        .chat.completions.create({ ...body, max_tokens: 100_000 })
        .catch((e: unknown) => e);
      expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(504);
    }
    await expect
      .poll(
        async () =>
          (await router.flush(),
          await db.pool.query(`SELECT count(*)::int AS n FROM request_events WHERE route = 'canary-bot'`))
            .rows[0].n,
        { timeout: 10_000 },
      )
      .toBe(11);
    const { rows } = await db.pool.query(
      `SELECT error_class, count(*)::int AS n FROM request_events WHERE route = 'canary-bot' GROUP BY 1 ORDER BY 1`,
    );
    expect(rows).toEqual([
      { error_class: 'client_cancelled', n: 3 },
      { error_class: 'client_timeout', n: 3 },
      { error_class: 'refused_bad_request', n: 5 },
    ]);
    // The six hang-ups and timeouts say nothing about the model: no requests, errors or slow ones on the
    // canary, in the statistics the policy decides on and in the triggers' metrics alike. The five 400s are
    // the canary's refusals: neither requests, errors nor latency, compared with stable's by the policy.
    expect(await canaryStats()).toMatchObject({
      requests: 0,
      errors: 0,
      slow: 0,
      refusals: 5,
      refusalKinds: { bad_request: 5 },
    });
    const evaluation = createEvaluationActivities({ pool: db.pool });
    const policyView = await evaluation.canaryStats({
      route: 'canary-bot',
      fromMs: started,
      slowThresholdMs: 300,
      // One step: everything served under the route's version (set once, before the requests).
      stepVersions: [(await getRoute(db.pool, 'canary-bot'))!.version],
    });
    expect(policyView.cumulative.canary).toMatchObject({ requests: 0, errors: 0, slow: 0, refusals: 5 });
    const triggerView = await evaluation.triggerMetrics({
      route: 'canary-bot',
      tag: 'canary',
      sinceMs: started,
      nowMs: Date.now(),
      triggers: [
        {
          metric: 'error_rate',
          threshold: 0.05,
          direction: 'above',
          windowMinutes: 15,
          minSample: 1,
          sampleOf: 'requests',
        },
      ],
    });
    expect(triggerView.error_rate?.requests ?? 0).toBe(0);
    expect((await breaker())?.state ?? 'closed').toBe('closed');
    expect((await breaker())?.consecutiveFailures ?? 0).toBe(0);

    // The model's own failures do count: a modest max_tokens timing out, and 500s.
    const timedOut = await client(KEY_A)
      .chat.completions.create({ ...body, max_tokens: 10 })
      .catch((e: unknown) => e);
    expect((timedOut as InstanceType<typeof OpenAI.APIError>).status).toBe(504);
    sim.setBehaviour('trust-candidate', {
      errorRate: 1,
      errorKinds: { server_error: 1 },
      latencyMs: { median: 5 },
    });
    for (let i = 0; i < 2; i++)
      await client(KEY_A)
        .chat.completions.create(body)
        .catch(() => undefined);
    await expect.poll(async () => (await canaryStats()).errors, { timeout: 10_000 }).toBe(3);
    expect((await canaryStats()).requests).toBe(3);
    const after = await createEvaluationActivities({ pool: db.pool }).triggerMetrics({
      route: 'canary-bot',
      tag: 'canary',
      sinceMs: started,
      nowMs: Date.now(),
      triggers: [
        {
          metric: 'error_rate',
          threshold: 0.05,
          direction: 'above',
          windowMinutes: 15,
          minSample: 1,
          sampleOf: 'requests',
        },
      ],
    });
    expect(after.error_rate).toMatchObject({ value: 1, requests: 3 });
    expect((await breaker())?.state).toBe('open');
  }, 60_000);
});

describe('what a key may see', () => {
  it('GET /v1/models lists only the routes the key may call', async () => {
    const file = `${(await import('node:os')).tmpdir()}/mr-trust-models-${crypto.randomBytes(4).toString('hex')}.json`;
    (await import('node:fs')).writeFileSync(
      file,
      JSON.stringify({ keys: [{ name: 'narrow', key: 'sk-narrow-0123456789abcdef', routes: ['plain'] }] }),
    );
    const narrow = createGateway({ router, auth: { store: createApiKeyStore({ file, watch: false }) } });
    const narrowUrl = await narrow.listen({ port: 0 });
    try {
      const models = await new OpenAI({
        apiKey: 'sk-narrow-0123456789abcdef',
        baseURL: `${narrowUrl}/v1`,
      }).models.list();
      expect(models.data.map((m) => m.id)).toEqual(['plain']);
    } finally {
      await narrow.close();
    }
    const all = await client(KEY_A).models.list();
    expect(all.data.map((m) => m.id).sort()).toEqual(['arms-bot', 'canary-bot', 'plain']);
  });

  it('routing state (both arms and the share) only for keys that may see arms', async () => {
    const read = (key: string) =>
      fetch(`${url}/v1/routes/arms-bot`, { headers: { authorization: `Bearer ${key}` } });
    const refused = await read(KEY_A);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('permission_denied');
    const shown = await read(KEY_EVAL);
    expect(shown.status).toBe(200);
    expect(await shown.json()).toMatchObject({ candidate: 'openai:arm-candidate', canaryBps: 10_000 });
  });
});

describe('a key not allowed to see arms learns its arm from nothing in the answer', () => {
  const body = { model: 'arms-bot', messages: [{ role: 'user' as const, content: PROMPT }] };

  it('JSON and streamed bodies name the route as their model, errors name no target', async () => {
    const hidden = await client(KEY_A).chat.completions.create(body).withResponse();
    expect(hidden.data.model).toBe('arms-bot');
    expect(hidden.response.headers.get('x-rollout-tag')).toBeNull();
    const shown = await client(KEY_EVAL).chat.completions.create(body).withResponse();
    expect(shown.data.model).toBe('arm-candidate');
    expect(shown.response.headers.get('x-rollout-tag')).toBe('canary');

    const stream = await client(KEY_A).chat.completions.create({ ...body, stream: true });
    const models = new Set<string>();
    let text = '';
    for await (const chunk of stream) {
      models.add(chunk.model);
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    expect([...models]).toEqual(['arms-bot']);
    expect(text.length).toBeGreaterThan(0);

    sim.setBehaviour('arm-candidate', { errorRate: 1, errorKinds: { bad_request: 1 } });
    try {
      const refused = (await client(KEY_A)
        .chat.completions.create(body)
        .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
      expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
      expect(refused.message).toContain('bad_request');
      expect(refused.message).not.toContain('arm-candidate');
      const told = (await client(KEY_EVAL)
        .chat.completions.create(body)
        .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
      expect(told.message).toContain('arm-candidate');
    } finally {
      sim.setBehaviour('arm-candidate', { errorRate: 0 });
    }
  });
});
