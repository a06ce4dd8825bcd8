import net from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway } from '../src/data-plane/gateway/server';
import { simulatorRegistry, type ProviderRegistry } from '../src/data-plane/providers';
import { bucketOf } from '../src/data-plane/router/assignment';
import { createRouter, type Router, type RouterOptions } from '../src/data-plane/router/router';
import {
  findQuestionByPrompt,
  loadQuestions,
  startSimulator,
  type SimulatorHandle,
} from '../src/tooling/simulator';
import { freePort, openDatabase, type Database } from '../src/store/database';
import {
  changeRoute,
  createRoute,
  getRoute,
  type CreateRouteInput,
  type SlotConfig,
} from '../src/store/routing-state';
import { createTestDatabase, type TestDatabase } from './helpers/db';

/**
 * The gateway end to end: the real `openai` client → gateway (fastify) → router → lean transport / Anthropic
 * SDK → simulator over HTTP, with real Postgres for routing state, events and feedback. No mocks.
 */

const KEY = 'sk-gw-test-0123456789';
const CTX = { actor: 'test', reason: 'test' };
const slot = (target: string, ...fallbacks: string[]): SlotConfig => {
  const parse = (t: string) => ({ provider: t.slice(0, t.indexOf(':')), model: t.slice(t.indexOf(':') + 1) });
  return { target: parse(target), fallbacks: fallbacks.map(parse) };
};
const QUESTION = loadQuestions()[3];
const ask = [{ role: 'user' as const, content: QUESTION.prompt }];

let db: TestDatabase;
let sim: SimulatorHandle;
let registry: ProviderRegistry;
let router: Router;
let url: string;
let client: OpenAI;
const cleanups: (() => Promise<unknown>)[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (err: unknown) => unhandled.push(err);

async function route(input: CreateRouteInput) {
  await createRoute(db.pool, input, CTX);
  // The router hears of it by NOTIFY; wait so tests never race their own setup.
  await until(() => router.state(input.name) !== undefined, 2000);
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await cond()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function rows<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
  await router.flush();
  return (await db.pool.query(sql, params)).rows as T[];
}

function post(path: string, body: string | object, headers: Record<string, string> = {}) {
  return fetch(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

function expectOpenAIError(body: unknown, code: string | null) {
  expect(body).toEqual({
    error: {
      message: expect.any(String),
      type: expect.any(String),
      param: expect.toBeOneOf([null, expect.any(String)]),
      code,
    },
  });
}

async function startGateway(options: Partial<RouterOptions> = {}, database: Database = db) {
  const r = await createRouter({
    database,
    providers: { registry, perAttemptTimeoutMs: 2000 },
    capture: { enabled: true },
    keepRaw: true,
    shadow: { timeoutMs: 600 },
    ...options,
  });
  const g = createGateway({ router: r, auth: { keys: [KEY, 'sk-second-key-abcdef'] } });
  const u = await g.listen({ port: 0 });
  cleanups.push(async () => {
    await g.close();
    await r.close();
  });
  return { router: r, gateway: g, url: u };
}

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  db = await createTestDatabase();
  sim = await startSimulator({ scenario: { default: { latencyMs: { median: 2, p99: 4 }, accuracy: 1 } } });
  registry = simulatorRegistry(sim.url);
  ({ router, url } = await startGateway());
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 });
  await route({ name: 'bot', blue: slot('openai:gpt-4o-mini'), green: slot('anthropic:claude-sonnet-4') });
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await sim?.close();
  await db?.close();
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

describe('OpenAI client end to end', () => {
  it('answers JSON completions with routing headers, and records one event per call', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'bot', messages: ask, user: 'alice', metadata: { reference_id: QUESTION.id } })
      .withResponse();
    expect(data.choices[0].message.content).toContain(QUESTION.reference);
    expect(data.object).toBe('chat.completion');
    expect(response.headers.get('x-rollout-route')).toBe('bot');
    expect(response.headers.get('x-rollout-tag')).toBe('stable');
    expect(response.headers.get('x-rollout-target')).toBe('openai:gpt-4o-mini');
    const requestId = response.headers.get('x-request-id')!;
    // The `openai` client hands the id to the application (for feedback) as `_request_id`.
    expect((data as { _request_id?: string | null })._request_id).toBe(requestId);

    const events = await rows('SELECT * FROM request_events WHERE request_id = $1', [requestId]);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      route: 'bot',
      tag: 'stable',
      slot: 'blue',
      target: 'openai:gpt-4o-mini',
      fallback_depth: 0,
      error_class: null,
      routing_version: '1',
      reference_id: QUESTION.id,
      prompt: ask,
      answer: data.choices[0].message.content,
      input_tokens: data.usage!.prompt_tokens,
      output_tokens: data.usage!.completion_tokens,
    });
    expect(events[0].latency_ms).toBeGreaterThan(0);
    expect(events[0].cost_usd).toBeGreaterThan(0);
  });

  it('streams over SSE, through a translated provider (Anthropic) too', async () => {
    await route({
      name: 'stream-bot',
      blue: slot('openai:gpt-4o'),
      green: slot('anthropic:claude-sonnet-4'),
      canaryBps: 10_000,
    });
    const { data: stream, response } = await client.chat.completions
      .create({ model: 'stream-bot', messages: ask, stream: true, stream_options: { include_usage: true } })
      .withResponse();
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined | null;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish ??= chunk.choices[0]?.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toContain(QUESTION.reference);
    expect(finish).toBe('stop');
    expect(usage?.completion_tokens).toBeGreaterThan(0);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    expect(response.headers.get('x-rollout-tag')).toBe('canary');
    expect(response.headers.get('x-rollout-target')).toBe('anthropic:claude-sonnet-4');
    const events = await rows('SELECT tag, slot, target, answer FROM request_events WHERE request_id = $1', [
      response.headers.get('x-request-id'),
    ]);
    expect(events).toEqual([
      { tag: 'canary', slot: 'green', target: 'anthropic:claude-sonnet-4', answer: text },
    ]);
  });

  it('answers JSON through the translated provider with an OpenAI-shaped body', async () => {
    const completion = await client.chat.completions.create({ model: 'stream-bot', messages: ask });
    expect(completion.model).toBe('claude-sonnet-4');
    expect(completion.choices[0].message).toMatchObject({
      role: 'assistant',
      content: expect.stringContaining(QUESTION.reference),
    });
    expect(completion.choices[0].finish_reason).toBe('stop');
  });

  it('records feedback by request id, once, changed only by PUT', async () => {
    const { response } = await client.chat.completions.create({ model: 'bot', messages: ask }).withResponse();
    const requestId = response.headers.get('x-request-id')!;
    const ok = await post('/v1/feedback', { request_id: requestId, score: 4, comment: 'good' });
    expect(ok.status).toBe(201);
    const again = await post('/v1/feedback', { request_id: requestId, thumbs: 'down' });
    expect(again.status).toBe(409);
    expectOpenAIError(await again.json(), 'feedback_exists');
    const thumbs = await fetch(`${url}/v1/feedback`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ request_id: requestId, thumbs: 'down' }),
    });
    expect(thumbs.status).toBe(200);
    const stored = await rows(
      'SELECT score, thumbs, comment, caller FROM feedback WHERE request_id = $1 ORDER BY id',
      [requestId],
    );
    expect(stored).toEqual([{ score: null, thumbs: 'down', comment: null, caller: 'key-1' }]);

    const bad = await post('/v1/feedback', { request_id: requestId, score: 9 });
    expect(bad.status).toBe(400);
    expectOpenAIError(await bad.json(), 'invalid_request_body');
    const neither = await post('/v1/feedback', { request_id: requestId });
    expect(neither.status).toBe(400);
  });
});

describe('canary and blue-green', () => {
  it('sends the canary share of users to the candidate, sticky per user (user field or x-rollout-key)', async () => {
    await route({
      name: 'half',
      blue: slot('openai:gpt-4o-mini'),
      green: slot('deepseek:deepseek-chat'),
      canaryBps: 5000,
    });
    const { salt } = router.state('half')!;
    const users = Array.from({ length: 100 }, (_, i) => `user-${i}`);
    const tagOf = async (user: string, viaHeader: boolean) => {
      const { response } = await client.chat.completions
        .create(
          { model: 'half', messages: ask, ...(viaHeader ? {} : { user }) },
          viaHeader ? { headers: { 'x-rollout-key': user } } : {},
        )
        .withResponse();
      return { tag: response.headers.get('x-rollout-tag'), target: response.headers.get('x-rollout-target') };
    };
    const first = await Promise.all(users.map((u) => tagOf(u, false)));
    const again = await Promise.all(users.map((u) => tagOf(u, true)));
    let canary = 0;
    users.forEach((u, i) => {
      const expected = bucketOf(salt, u) < 5000 ? 'canary' : 'stable';
      expect(first[i].tag).toBe(expected);
      expect(again[i].tag).toBe(expected); // sticky, and the header is the same key as `user`
      expect(first[i].target).toBe(expected === 'canary' ? 'deepseek:deepseek-chat' : 'openai:gpt-4o-mini');
      if (expected === 'canary') canary++;
    });
    expect(canary / users.length).toBeGreaterThan(0.35);
    expect(canary / users.length).toBeLessThan(0.65);
  });

  it('serves a blue-green flip committed with changeRoute within one second', async () => {
    await route({ name: 'flip', blue: slot('openai:gpt-4o-mini'), green: slot('google:gemini-2.5-flash') });
    let served = 0;
    const targetNow = async () => {
      const { response } = await client.chat.completions
        .create({ model: 'flip', messages: ask })
        .withResponse();
      served++;
      return response.headers.get('x-rollout-target');
    };
    expect(await targetNow()).toBe('openai:gpt-4o-mini');
    const state = (await getRoute(db.pool, 'flip'))!;
    await changeRoute(db.pool, 'flip', {
      ...CTX,
      expectedVersion: state.version,
      patch: { stableSlot: 'green' },
    });
    const elapsed = await until(async () => (await targetNow()) === 'google:gemini-2.5-flash', 1000);
    expect(elapsed).toBeLessThan(1000);
    // An answer's event is queued when the gateway finishes the response, which can be just after the client has
    // read it: wait for every request's event before reading the newest one.
    await until(async () => {
      const [{ n }] = await rows<{ n: number }>(
        "SELECT count(*)::int AS n FROM request_events WHERE route = 'flip'",
      );
      return n === served;
    }, 5000);
    const events = await rows(
      "SELECT slot, routing_version FROM request_events WHERE route = 'flip' ORDER BY id DESC LIMIT 1",
    );
    expect(events[0]).toEqual({ slot: 'green', routing_version: String(state.version + 1) });
  });
});

describe('shadow', () => {
  /** Served latency (ms, measured by the client) of `n` sequential requests. */
  async function servedLatencies(model: string, n: number) {
    const out: {
      ms: number;
      status: number;
      target: string | null;
      requestId: string | null;
      text: string;
    }[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const { data, response } = await client.chat.completions
        .create({ model, messages: ask })
        .withResponse();
      out.push({
        ms: performance.now() - t0,
        status: response.status,
        target: response.headers.get('x-rollout-target'),
        requestId: response.headers.get('x-request-id'),
        text: data.choices[0].message.content ?? '',
      });
    }
    return out;
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

  it('never changes the served answer, status or latency, whether the candidate fails, hangs or is slow', async () => {
    sim.setBehaviour('cand-fail', {
      errorRate: 1,
      errorKinds: { server_error: 1 },
      latencyMs: { median: 1 },
    });
    sim.setBehaviour('cand-hang', { errorRate: 1, errorKinds: { timeout: 1 } });
    sim.setBehaviour('cand-slow', { latencyMs: { median: 300, p99: 320 }, accuracy: 1 });
    await route({ name: 'no-shadow', blue: slot('openai:gpt-4o-mini') });
    const baseline = await servedLatencies('no-shadow', 15);

    for (const candidate of ['cand-fail', 'cand-hang', 'cand-slow']) {
      const name = `shadow-${candidate}`;
      await route({
        name,
        blue: slot('openai:gpt-4o-mini'),
        green: slot(`openai:${candidate}`),
        shadowRate: 1,
      });
      const served = await servedLatencies(name, 15);
      for (const s of served) {
        expect(s.status).toBe(200);
        expect(s.target).toBe('openai:gpt-4o-mini');
        expect(s.text).toContain(QUESTION.reference);
        // Far below the candidate's 300 ms (slow) or 600 ms (hang → shadow timeout).
        expect(s.ms).toBeLessThan(150);
      }
      // A bound that only a shadow on the request path could break (the slow candidate takes 300 ms), with
      // room for a loaded CI machine's scheduling noise.
      expect(median(served.map((s) => s.ms))).toBeLessThan(median(baseline.map((s) => s.ms)) + 25);

      const shadowEvents = await rows<{ error_class: string | null; answer: string | null }>(
        "SELECT error_class, answer FROM request_events WHERE route = $1 AND tag = 'shadow'",
        [name],
      );
      expect(shadowEvents).toHaveLength(15);
      const expectedClass = { 'cand-fail': 'server_error', 'cand-hang': 'timeout', 'cand-slow': null }[
        candidate
      ];
      if (expectedClass === null) for (const e of shadowEvents) expect(e.error_class).toBeNull();
      else {
        // After 5 failures the candidate's circuit opens and later shadows are skipped without a call.
        const classes = shadowEvents.map((e) => e.error_class);
        expect(classes.filter((c) => c === expectedClass).length).toBeGreaterThanOrEqual(5);
        expect(classes.every((c) => c === expectedClass || c === 'circuit_open')).toBe(true);
      }
      const pairs = await rows<{
        request_id: string;
        stable_event_id: string | null;
        shadow_event_id: string | null;
      }>(
        'SELECT request_id, stable_event_id, shadow_event_id, stable_target, shadow_target FROM shadow_comparisons WHERE route = $1',
        [name],
      );
      if (candidate === 'cand-slow') {
        expect(pairs).toHaveLength(15);
        expect(pairs.map((p) => p.request_id).sort()).toEqual(served.map((s) => s.requestId).sort());
        for (const p of pairs) {
          expect(p).toMatchObject({ stable_target: 'openai:gpt-4o-mini', shadow_target: 'openai:cand-slow' });
          expect(p.stable_event_id).not.toBeNull();
          expect(p.shadow_event_id).not.toBeNull();
        }
        for (const e of shadowEvents)
          expect(findQuestionByPrompt(QUESTION.prompt) && e.answer).toContain(QUESTION.reference);
      } else {
        expect(pairs).toHaveLength(0);
      }
    }
  });
});

describe('fallback and exhausted chains', () => {
  it('answers from the next target when the primary is down, and says which one answered', async () => {
    sim.setBehaviour('primary-down', {
      errorRate: 1,
      errorKinds: { server_error: 1 },
      latencyMs: { median: 1 },
    });
    await route({ name: 'fb', blue: slot('openai:primary-down', 'deepseek:deepseek-chat') });
    const { data, response } = await client.chat.completions
      .create({ model: 'fb', messages: ask })
      .withResponse();
    expect(data.choices[0].message.content).toContain(QUESTION.reference);
    expect(response.headers.get('x-rollout-target')).toBe('deepseek:deepseek-chat');
    const events = await rows(
      'SELECT target, fallback_depth, error_class FROM request_events WHERE request_id = $1',
      [response.headers.get('x-request-id')],
    );
    expect(events).toEqual([{ target: 'deepseek:deepseek-chat', fallback_depth: 1, error_class: null }]);

    // Streams fall back too, before the first delta.
    const { data: stream, response: streamed } = await client.chat.completions
      .create({ model: 'fb', messages: ask, stream: true })
      .withResponse();
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toContain(QUESTION.reference);
    expect(streamed.headers.get('x-rollout-target')).toBe('deepseek:deepseek-chat');
  });

  it.each([
    ['server_error', 502, 'upstream_error'],
    ['rate_limit', 429, 'rate_limit_exceeded'],
    ['overloaded', 503, 'upstream_unavailable'],
  ] as const)('maps an exhausted chain of %s to %i with an OpenAI error body', async (kind, status, code) => {
    const a = `down-a-${kind}`;
    const b = `down-b-${kind}`;
    for (const m of [a, b])
      sim.setBehaviour(m, { errorRate: 1, errorKinds: { [kind]: 1 }, latencyMs: { median: 1 } });
    await route({ name: `ex-${kind}`, blue: slot(`openai:${a}`, `google:${b}`) });
    const error = await client.chat.completions
      .create({ model: `ex-${kind}`, messages: ask })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    const apiError = error as InstanceType<typeof OpenAI.APIError>;
    expect(apiError.status).toBe(status);
    expect(apiError.code).toBe(code);
    expect(apiError.headers?.get('x-rollout-target')).toBe(`google:${b}`);
    if (kind === 'rate_limit') expect(apiError.headers?.get('retry-after')).toBe('1');
    const events = await rows('SELECT target, error_class FROM request_events WHERE request_id = $1', [
      apiError.headers?.get('x-request-id'),
    ]);
    expect(events).toEqual([
      { target: `google:${b}`, error_class: kind === 'rate_limit' ? 'rate_limited' : kind },
    ]);

    // Streaming: the failure comes before any delta, so it is a plain HTTP error as well.
    const streamError = await client.chat.completions
      .create({ model: `ex-${kind}`, messages: ask, stream: true })
      .then(async (s) => {
        for await (const _ of s);
      })
      .catch((e: unknown) => e);
    expect((streamError as InstanceType<typeof OpenAI.APIError>).status).toBe(status);
  });
});

describe('errors are OpenAI-shaped', () => {
  it('401 without a bearer key or with a wrong one, never echoing it', async () => {
    const none = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'bot', messages: ask }),
    });
    expect(none.status).toBe(401);
    expectOpenAIError(await none.json(), 'invalid_api_key');

    const wrongKey = 'sk-wrong-key-should-not-be-echoed';
    const wrong = new OpenAI({ baseURL: `${url}/v1`, apiKey: wrongKey, maxRetries: 0 });
    const error = (await wrong.chat.completions
      .create({ model: 'bot', messages: ask })
      .catch((e) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(error.code).toBe('invalid_api_key');
    expect(JSON.stringify(error.error)).not.toContain(wrongKey);

    // The second configured key works.
    const second = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-second-key-abcdef', maxRetries: 0 });
    expect((await second.chat.completions.create({ model: 'bot', messages: ask })).choices).toHaveLength(1);
  });

  it('404 for an unknown route (and an unknown URL)', async () => {
    const error = (await client.chat.completions
      .create({ model: 'no-such-route', messages: ask })
      .catch((e) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error.code).toBe('model_not_found');
    expect(error.error).toMatchObject({ param: 'model', type: 'invalid_request_error' });
    const stream = await client.chat.completions
      .create({ model: 'no-such-route', messages: ask, stream: true })
      .catch((e) => e);
    expect(stream).toBeInstanceOf(OpenAI.NotFoundError);

    const page = await fetch(`${url}/v1/nothing-here`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(page.status).toBe(404);
    expectOpenAIError(await page.json(), 'unknown_url');
  });

  it('400 for malformed JSON, missing messages and bad roles', async () => {
    const malformed = await post('/v1/chat/completions', '{"model": "bot", "messages": [');
    expect(malformed.status).toBe(400);
    expectOpenAIError(await malformed.json(), 'invalid_request_body');

    const missing = await post('/v1/chat/completions', { model: 'bot' });
    expect(missing.status).toBe(400);
    const body = (await missing.json()) as { error: { param: string; message: string } };
    expectOpenAIError(body, 'invalid_request_body');
    expect(body.error.param).toBe('messages');

    const badRole = await post('/v1/chat/completions', {
      model: 'bot',
      messages: [{ role: 'wizard', content: 'hi' }],
    });
    expect(badRole.status).toBe(400);
    expect(((await badRole.json()) as { error: { param: string } }).error.param).toBe('messages.0.role');

    // Fields the gateway does not read are the upstream's to judge: its 400 comes back as a 400.
    const tools = await post('/v1/chat/completions', {
      model: 'bot',
      messages: ask,
      tools: [{ type: 'function' }],
    });
    expect(tools.status).toBe(400);
    expect(((await tools.json()) as { error: { message: string } }).error.message).toContain("'tools.0'");

    const sdk = await client.chat.completions.create({ model: 'bot', messages: [] }).catch((e) => e);
    expect(sdk).toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('413 for a body over the limit', async () => {
    const huge = { model: 'bot', messages: [{ role: 'user', content: 'x'.repeat(16 * 1024 * 1024 + 10) }] };
    const response = await post('/v1/chat/completions', huge);
    expect(response.status).toBe(413);
    expectOpenAIError(await response.json(), 'request_too_large');
  });

  it('refuses to start without keys unless auth is explicitly disabled', () => {
    const saved = process.env.GATEWAY_API_KEYS;
    delete process.env.GATEWAY_API_KEYS;
    try {
      expect(() => createGateway({ router })).toThrow(/no API keys configured/);
      process.env.GATEWAY_API_KEYS = ' k-one , k-two ';
      expect(() => createGateway({ router })).not.toThrow();
      expect(() => createGateway({ router, auth: { disabled: true } })).not.toThrow();
    } finally {
      if (saved === undefined) delete process.env.GATEWAY_API_KEYS;
      else process.env.GATEWAY_API_KEYS = saved;
    }
  });
});

describe('observability', () => {
  it('exposes Prometheus metrics and a health report', async () => {
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(
      /model_rollout_requests_total\{route="bot",tag="stable",target="openai:gpt-4o-mini",outcome="ok"\} \d+/,
    );
    expect(metrics).toContain('model_rollout_request_duration_seconds_bucket');
    expect(metrics).toMatch(
      /model_rollout_fallbacks_total\{route="fb",tag="stable",target="deepseek:deepseek-chat",depth="1"\} \d+/,
    );
    expect(metrics).toMatch(
      /model_rollout_shadow_calls_total\{route="shadow-cand-hang",target="openai:cand-hang",outcome="timeout"\} [1-9]/,
    );
    expect(metrics).toContain('model_rollout_events_dropped 0');
    // What this replica routes by: the cached version and shares of each route.
    const bot = router.state('bot')!;
    expect(metrics).toContain(`model_rollout_routing_version{route="bot"} ${bot.version}`);
    expect(metrics).toContain(`model_rollout_canary_share{route="bot"} ${bot.canaryBps / 10_000}`);
    expect(metrics).toContain(`model_rollout_shadow_rate{route="bot"} ${bot.shadowRate}`);
    expect(metrics).toMatch(/model_rollout_breaker_state\{target="openai:down-a-server_error"\} \d/);
    expect(metrics).toMatch(/model_rollout_gateway_errors_total\{status="401",code="invalid_api_key"\} \d+/);

    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({
      status: 'ok',
      serving: true,
      routing: { ok: true, notify: 'listening' },
      postgres: { ok: true },
    });
  });
});

/** A TCP proxy in front of Postgres: stopping it is Postgres going away, for this gateway only. */
class PgProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  constructor(readonly port: number) {}
  async start(target: { host: string; port: number }) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(target.port, target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }
  async stop() {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = null;
  }
}

describe('Postgres going away mid-traffic', () => {
  it('keeps serving from cached routing state, reports degraded health, counts events, and recovers', async () => {
    await route({
      name: 'pg-down',
      blue: slot('openai:gpt-4o-mini'),
      green: slot('deepseek:deepseek-chat'),
      canaryBps: 5000,
    });
    const real = new URL(db.connectionString);
    const proxy = new PgProxy(await freePort());
    await proxy.start({ host: real.hostname, port: Number(real.port || 5432) });
    const viaProxy = new URL(db.connectionString);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const database = await openDatabase({ url: viaProxy.toString(), poolSize: 4 });
    cleanups.push(() => database.close());
    const { router: r, url: u } = await startGateway(
      {
        cache: { pollIntervalMs: 200, reconnectMaxMs: 300 },
        events: { maxAttempts: 100, retryMaxMs: 200, maxBuffer: 50 },
      },
      database,
    );
    const c = new OpenAI({ baseURL: `${u}/v1`, apiKey: KEY, maxRetries: 0 });
    const call = async (user: string) => {
      const { response } = await c.chat.completions
        .create({ model: 'pg-down', messages: ask, user })
        .withResponse();
      return { status: response.status, tag: response.headers.get('x-rollout-tag') };
    };
    const before = await Promise.all(Array.from({ length: 10 }, (_, i) => call(`u${i}`)));
    await r.flush();

    await proxy.stop(); // Postgres is gone for this gateway
    const during: { status: number; tag: string | null }[] = [];
    for (let round = 0; round < 8; round++)
      during.push(...(await Promise.all(Array.from({ length: 10 }, (_, i) => call(`u${i}`)))));
    expect(during.every((d) => d.status === 200)).toBe(true);
    // Same sticky assignment as before the outage: served from the cached state.
    for (let i = 0; i < during.length; i++) expect(during[i].tag).toBe(before[i % 10].tag);

    // Still 200: the replica serves (from its cached routing state), and says what is wrong.
    const health = await fetch(`${u}/healthz`);
    expect(health.status).toBe(200);
    const report = (await health.json()) as {
      status: string;
      serving: boolean;
      reasons: string[];
      postgres: { ok: boolean };
      routing: { ok: boolean; notify: string };
      events: { buffered: number; dropped: number };
    };
    expect(report).toMatchObject({
      status: 'degraded',
      serving: true,
      postgres: { ok: false },
      routing: { ok: false },
    });
    expect(report.reasons.join(' ')).toContain('postgres unreachable');
    // 80 events into a buffer of 50: the rest were dropped, and counted.
    expect(report.events.buffered).toBeGreaterThan(0);
    expect(report.events.dropped).toBeGreaterThan(0);
    const metrics = await (await fetch(`${u}/metrics`)).text();
    expect(metrics).toMatch(/model_rollout_events_dropped [1-9]/);

    await proxy.start({ host: real.hostname, port: Number(real.port || 5432) });
    await until(
      async () => ((await (await fetch(`${u}/healthz`)).json()) as { status: string }).status === 'ok',
      10_000,
    );
    await r.flush();
    const stats = (await r.health()).events!;
    expect(stats.buffered).toBe(0);
    expect(stats.written + stats.dropped).toBe(90);
  }, 30_000);
});
