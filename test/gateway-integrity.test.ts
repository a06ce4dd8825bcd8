/**
 * Issue 19, findings 6, 7 and part of 9, through the real gateway, router, simulator and Postgres:
 * - a key that may not see arms cannot tell them apart by the completion `id` or `system_fingerprint`
 *   (an OpenAI-compatible arm passed through, an Anthropic arm translated), JSON or streamed;
 * - a body with one top-level key twice (two `model`s) is refused and reaches no upstream;
 * - feedback for a stable request whose event is outside the sample (no row) is taken, from its key only.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import fc from 'fast-check';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKeyStore } from '../src/data-plane/gateway/api-keys';
import { maskArmJson, maskArmSse } from '../src/data-plane/gateway/arm-mask';
import { duplicateTopLevelKey } from '../src/data-plane/gateway/duplicate-keys';
import { ServedReceipts } from '../src/data-plane/gateway/receipts';
import { createGateway, type Gateway } from '../src/data-plane/gateway/server';
import { simulatorRegistry } from '../src/data-plane/providers';
import { createRouter, type Router } from '../src/data-plane/router/router';
import { startSimulator, type SimulatorHandle } from '../src/tooling/simulator';
import { createRoute } from '../src/store/routing-state';
import { createTestDatabase, type TestDatabase } from './helpers/db';

const KEY_APP = 'sk-app-00-0123456789abcdef';
const KEY_OTHER = 'sk-other-0123456789abcdef';
const KEY_EVAL = 'sk-evals-0123456789abcdef';
const PROMPT = 'Which cloud types bring afternoon thunderstorms?';

let db: TestDatabase;
let sim: SimulatorHandle;
let router: Router;
let gateway: Gateway;
let url: string;
let keysFile: string;

beforeAll(async () => {
  db = await createTestDatabase();
  sim = await startSimulator({ scenario: { default: { latencyMs: { median: 5 } } } });
  router = await createRouter({
    database: db,
    connectionString: db.connectionString,
    providers: { registry: simulatorRegistry(sim.url) },
    cache: { pollIntervalMs: 100 },
    // Almost no stable event is kept as a row: feedback must find them by their receipts.
    events: { flushIntervalMs: 20, stableSampleRate: 0.000001 },
    keepRaw: true,
  });
  keysFile = `${os.tmpdir()}/mr-integrity-${crypto.randomBytes(4).toString('hex')}.json`;
  fs.writeFileSync(
    keysFile,
    JSON.stringify({
      keys: [
        { name: 'app', key: KEY_APP, routes: ['*'] },
        { name: 'other', key: KEY_OTHER, routes: ['*'] },
        { name: 'evals', key: KEY_EVAL, routes: ['*'], armHeaders: true, evaluation: true },
      ],
    }),
    { mode: 0o600 },
  );
  gateway = createGateway({ router, auth: { store: createApiKeyStore({ file: keysFile, watch: false }) } });
  url = await gateway.listen({ port: 0 });
  const ctx = { actor: 'test', reason: 'test' };
  // Half the routing keys land on each arm: OpenAI-compatible stable, Anthropic (translated) candidate.
  await createRoute(
    db.pool,
    {
      name: 'two-wires',
      blue: { target: { provider: 'openai', model: 'gpt-4o' }, fallbacks: [] },
      green: { target: { provider: 'anthropic', model: 'claude-sonnet-4' }, fallbacks: [] },
      canaryBps: 5_000,
    },
    ctx,
  );
  await createRoute(
    db.pool,
    { name: 'plain', blue: { target: { provider: 'openai', model: 'gpt-4o-mini' }, fallbacks: [] } },
    ctx,
  );
  const deadline = Date.now() + 10_000;
  while (!(router.state('two-wires') && router.state('plain'))) {
    if (Date.now() > deadline) throw new Error('the router did not load the test routes within 10 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}, 60_000);

afterAll(async () => {
  await gateway?.close();
  await router?.close();
  await sim?.close();
  await db?.close();
  if (keysFile) fs.rmSync(keysFile, { force: true });
});

const client = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries: 0 });
const body = { model: 'two-wires', messages: [{ role: 'user' as const, content: PROMPT }] };

/** A routing key for each arm, found with the evaluation key (which is told its arm). */
async function routingKeys(): Promise<Record<'stable' | 'canary', string>> {
  const found: Partial<Record<'stable' | 'canary', string>> = {};
  for (let i = 0; i < 64 && !(found.stable && found.canary); i++) {
    const key = `user-${i}`;
    const { response } = await client(KEY_EVAL)
      .chat.completions.create(body, { headers: { 'x-rollout-key': key } })
      .withResponse();
    found[response.headers.get('x-rollout-tag') as 'stable' | 'canary'] ??= key;
  }
  if (!found.stable || !found.canary) throw new Error('no routing key for one of the arms in 64 tries');
  return found as Record<'stable' | 'canary', string>;
}

describe('the completion id and fingerprint do not show the arm', () => {
  it('JSON answers of either arm carry the gateway id and a null fingerprint, in the same shape', async () => {
    const keys = await routingKeys();
    // What the arms look like to a key that may see them: different ids (this is what the mask hides).
    const shown = await Promise.all(
      (['stable', 'canary'] as const).map(async (arm) => {
        const { data, response } = await client(KEY_EVAL)
          .chat.completions.create(body, { headers: { 'x-rollout-key': keys[arm] } })
          .withResponse();
        return { data, requestId: response.headers.get('x-request-id') };
      }),
    );
    expect(shown[0].data.id).not.toBe(`chatcmpl-${shown[0].requestId}`); // the upstream's own id
    expect(shown[1].data.id).toBe(`chatcmpl-${shown[1].requestId}`); // a translated answer's

    const hidden = await Promise.all(
      (['stable', 'canary'] as const).map(async (arm) => {
        const { data, response } = await client(KEY_APP)
          .chat.completions.create(body, { headers: { 'x-rollout-key': keys[arm] } })
          .withResponse();
        return { data, requestId: response.headers.get('x-request-id')! };
      }),
    );
    for (const { data, requestId } of hidden) {
      expect(data.id).toBe(`chatcmpl-${requestId}`);
      expect(data.system_fingerprint).toBeNull();
      expect(data.model).toBe('two-wires');
      expect(data.choices[0].message.content?.length).toBeGreaterThan(0);
    }
    expect(Object.keys(hidden[0].data).sort()).toEqual(Object.keys(hidden[1].data).sort());
  });

  it('every chunk of a stream, from either arm, carries one id (the gateway’s) and a null fingerprint', async () => {
    const keys = await routingKeys();
    const shapes: string[][] = [];
    for (const arm of ['stable', 'canary'] as const) {
      const { data: stream, response } = await client(KEY_APP)
        .chat.completions.create(
          { ...body, stream: true, stream_options: { include_usage: true } },
          { headers: { 'x-rollout-key': keys[arm] } },
        )
        .withResponse();
      const ids = new Set<string>();
      const fingerprints = new Set<unknown>();
      let text = '';
      let usage = false;
      for await (const chunk of stream) {
        ids.add(chunk.id);
        fingerprints.add(chunk.system_fingerprint);
        expect(chunk.model).toBe('two-wires');
        text += chunk.choices[0]?.delta?.content ?? '';
        usage ||= chunk.usage != null;
        shapes.push(Object.keys(chunk).sort());
      }
      expect([...ids]).toEqual([`chatcmpl-${response.headers.get('x-request-id')}`]);
      expect([...fingerprints]).toEqual([null]);
      expect(text.length).toBeGreaterThan(0);
      expect(usage).toBe(true);
    }
    // Content chunks of both arms have the same members (usage chunks add `usage`).
    const content = new Set(shapes.filter((s) => !s.includes('usage')).map((s) => s.join()));
    expect([...content]).toHaveLength(1);
  });

  it('rewrites only the top-level id, the model and the fingerprint, wherever the id stands', () => {
    const mask = { requestId: 'req-1', route: 'r' };
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.string().filter((k) => !['id', 'model', 'system_fingerprint'].includes(k)),
          fc.jsonValue(),
        ),
        fc.string(),
        fc.option(fc.string(), { nil: null }),
        fc.boolean(),
        (rest, upstreamId, fingerprint, idFirst) => {
          const withNested = { ...rest, choices: [{ delta: { tool_calls: [{ id: 'call_1' }] } }] };
          const members = { model: 'gpt-x', system_fingerprint: fingerprint, ...withNested };
          const source = JSON.stringify(
            idFirst ? { id: upstreamId, ...members } : { ...members, id: upstreamId },
          );
          const masked = JSON.parse(maskArmJson(source, mask)) as Record<string, unknown>;
          // (through JSON: -0 is written 0)
          expect(masked).toEqual(
            JSON.parse(
              JSON.stringify({ ...withNested, id: 'chatcmpl-req-1', model: 'r', system_fingerprint: null }),
            ),
          );
        },
      ),
    );
    const sse =
      'data: {"id":"chatcmpl-X","model":"m","system_fingerprint":"fp_1","choices":[]}\n\ndata: [DONE]\n\n';
    expect(maskArmSse(sse, mask)).toBe(
      'data: {"id":"chatcmpl-req-1","model":"r","system_fingerprint":null,"choices":[]}\n\ndata: [DONE]\n\n',
    );
  });
});

describe('a body with a top-level key twice', () => {
  const send = (text: string) =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY_APP}`, 'content-type': 'application/json' },
      body: text,
    });

  it('is refused with a 400 naming the key, and no upstream receives it', async () => {
    const before = sim.stats().requests;
    const messages = JSON.stringify([{ role: 'user', content: PROMPT }]);
    for (const text of [
      // Routed (last wins) as `plain`; the splice used to rewrite the first, so the upstream saw `plain`.
      `{"model":"gpt-4o","messages":${messages},"model":"plain"}`,
      // The same key spelled with an escape is the same key.
      `{"model":"plain","messages":${messages},"mod\\u0065l":"plain"}`,
      `{"messages":${messages},"model":"plain","temperature":0.2,"temperature":1.9}`,
    ]) {
      const response = await send(text);
      expect(response.status).toBe(400);
      const error = ((await response.json()) as { error: Record<string, unknown> }).error;
      expect(error).toMatchObject({ type: 'invalid_request_error', code: 'duplicate_key' });
      expect(String(error.message)).toContain(`"${String(error.param)}"`);
      expect(['model', 'temperature']).toContain(error.param);
    }
    expect(sim.stats().requests).toBe(before);
    expect(sim.stats().byModel.plain).toBeUndefined();
    // Nested objects may repeat keys of the top level; one `model` at the top is served as before.
    const fine = await send(
      `{"model":"plain","messages":${messages},"metadata":{"model":"x","user":"u"},"user":"u"}`,
    );
    expect(fine.status).toBe(200);
    expect(sim.received().at(-1)?.body).toMatchObject({ model: 'gpt-4o-mini' });
  });

  it('names the key found twice, at the top level only', () => {
    const check = (text: string) => duplicateTopLevelKey(text, JSON.parse(text) as object);
    expect(check('{"a":1,"b":{"a":2,"a":3},"c":"\\"a\\":"}')).toBeUndefined();
    expect(check('{"a":"x\\\\","a":[{"a":1}]}')).toBe('a');
    expect(check('{ "__proto__" : 1 , "__proto__" : 2 }')).toBe('__proto__');
    expect(check('{}')).toBeUndefined();
  });
});

describe('feedback for a stable request outside the event sample', () => {
  const feedback = (apiKey: string, requestId: string) =>
    fetch(`${url}/v1/feedback`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ request_id: requestId, score: 4 }),
    });

  it('is taken from the key that was served (no event row), and refused to another key', async () => {
    const { response } = await client(KEY_APP)
      .chat.completions.create({ model: 'plain', messages: [{ role: 'user', content: PROMPT }] })
      .withResponse();
    const requestId = response.headers.get('x-request-id')!;
    await router.flush();
    const rows = await db.pool.query('SELECT 1 FROM request_events WHERE request_id = $1', [requestId]);
    expect(rows.rowCount).toBe(0); // the scenario: the stable event was counted, not kept

    const other = await feedback(KEY_OTHER, requestId);
    expect(other.status).toBe(404);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('request_not_found');

    const taken = await feedback(KEY_APP, requestId);
    expect(taken.status).toBe(201);
    expect(await taken.json()).toMatchObject({ object: 'feedback', request_id: requestId });
    const stored = await db.pool.query('SELECT score, caller FROM feedback WHERE request_id = $1', [
      requestId,
    ]);
    expect(stored.rows).toEqual([{ score: 4, caller: 'app' }]);
    expect((await feedback(KEY_APP, requestId)).status).toBe(409); // once, as for any request

    // A streamed answer gets its receipt too.
    const stream = await client(KEY_APP)
      .chat.completions.create({
        model: 'plain',
        messages: [{ role: 'user', content: PROMPT }],
        stream: true,
      })
      .withResponse();
    for await (const _chunk of stream.data);
    expect((await feedback(KEY_APP, stream.response.headers.get('x-request-id')!)).status).toBe(201);
  });

  it('keeps the last `capacity` receipts, the oldest dropped first', () => {
    const receipts = new ServedReceipts(3);
    for (const id of ['r1', 'r2', 'r3', 'r4', 'r5']) receipts.add(id, 'app');
    expect(receipts.size).toBe(3);
    expect(['r1', 'r2', 'r3', 'r4', 'r5'].map((id) => receipts.get(id)?.caller ?? null)).toEqual([
      null,
      null,
      'app',
      'app',
      'app',
    ]);
  });

  it('a request id never served is still a 404 that says where such a request may be', async () => {
    const unknown = await feedback(KEY_APP, crypto.randomUUID());
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toMatch(
      /outside the event sample/,
    );
  });
});
