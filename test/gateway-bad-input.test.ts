/**
 * Bad input at the gateway: a table of malformed requests (bodies, headers, content types, encodings, sizes,
 * NUL bytes and lone surrogates, prototype keys, huge numbers, wrong types, ...), each with the status and
 * the OpenAI-style error it must get; then a property-based pass (fast-check) over generated bodies: a
 * client's mistake never gets a 5xx and never brings the gateway down. The gateway runs as its own process
 * (`model-rollout gateway`, as deployed), so a crash would show as an exit, and `/healthz` is asked after.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type SimulatorHandle } from '../src/tooling/simulator';
import { createRoute } from '../src/store/routing-state';
import { createTestDatabase, type TestDatabase } from './helpers/db';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'model-rollout.js');
const APP_KEY = 'sk-app-bad-input-0123456789';
const EVAL_KEY = 'sk-eval-bad-input-0123456789';
const BODY_LIMIT = 64 * 1024;

let db: TestDatabase;
let sim: SimulatorHandle;
let child: ChildProcess;
let base: URL;
let childLog = '';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-bad-input-'));

beforeAll(async () => {
  db = await createTestDatabase();
  sim = await startSimulator({ scenario: { default: { latencyMs: { median: 3 } } } });
  await createRoute(
    db.pool,
    { name: 'good-bot', blue: { target: { provider: 'openai', model: 'gpt-4o-mini' }, fallbacks: [] } },
    { actor: 'test', reason: 'test' },
  );
  const keysFile = path.join(tmp, 'keys.json');
  fs.writeFileSync(
    keysFile,
    JSON.stringify({
      keys: [
        { name: 'app', key: APP_KEY, routes: ['good-bot'] },
        { name: 'evals', key: EVAL_KEY, routes: ['*'], armHeaders: true, evaluation: true },
      ],
    }),
  );
  child = spawn(
    process.execPath,
    // --capture: prompts and answers are stored, so NUL bytes and lone surrogates must be storable.
    [BIN, 'gateway', '--port', '0', '--simulator', sim.url, '--body-limit', String(BODY_LIMIT), '--capture'],
    {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: db.connectionString, GATEWAY_KEYS_FILE: keysFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout!.on('data', (c) => (childLog += c));
  child.stderr!.on('data', (c) => (childLog += c));
  const deadline = Date.now() + 60_000;
  let match: RegExpMatchArray | null = null;
  while (!(match = /gateway:\s+(http:\/\/\S+)\/v1/.exec(childLog))) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`gateway did not start:\n${childLog}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  base = new URL(match[1]);
  // The route reaches the gateway's routing cache at start; make sure it serves before the table runs.
  for (;;) {
    const r = await send({ body: { model: 'good-bot', messages: [{ role: 'user', content: 'ready?' }] } });
    if (r.status === 200) break;
    if (Date.now() > deadline) throw new Error(`gateway does not serve good-bot: ${r.status} ${r.text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}, 90_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGINT');
    await new Promise((r) => child.once('exit', r));
  }
  await sim?.close();
  await db?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface Request {
  method?: string;
  path?: string;
  /** Headers; `authorization` defaults to the app key, `content-type` to JSON (null: left out). */
  headers?: Record<string, string | null>;
  /** An object is sent as JSON; a string or Buffer as the raw bytes. */
  body?: unknown;
}

interface Response {
  status: number;
  text: string;
  json: unknown;
  headers: http.IncomingHttpHeaders;
}

/** Raw HTTP, so every byte and header is the test's (fetch would add or fix some). */
function send(req: Request): Promise<Response> {
  const body =
    req.body === undefined
      ? undefined
      : Buffer.isBuffer(req.body)
        ? req.body
        : Buffer.from(typeof req.body === 'string' ? req.body : JSON.stringify(req.body));
  const headers: Record<string, string> = {
    authorization: `Bearer ${APP_KEY}`,
    'content-type': 'application/json',
  };
  for (const [k, v] of Object.entries(req.headers ?? {})) {
    if (v === null) delete headers[k];
    else headers[k] = v;
  }
  if (body) headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const r = http.request(
      {
        host: base.hostname,
        port: base.port,
        method: req.method ?? 'POST',
        path: req.path ?? '/v1/chat/completions',
        headers,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, text, json, headers: res.headers });
        });
      },
    );
    r.on('error', reject);
    r.end(body);
  });
}

const user = (content: unknown = 'Which planets have rings?') => [{ role: 'user', content }];
const ok = (extra: Record<string, unknown> = {}) => ({ model: 'good-bot', messages: user(), ...extra });
const asEval = { authorization: `Bearer ${EVAL_KEY}` };

interface Case {
  name: string;
  req: Request;
  status: number;
  /** The error's `code` (and `param`, when the error names a field). */
  code?: string;
  param?: string | null;
}

const CASES: Case[] = [
  // Bodies that are not a chat completion request at all.
  { name: 'empty body', req: { body: '' }, status: 400, code: 'invalid_request_body' },
  { name: 'JSON null', req: { body: 'null' }, status: 400, code: 'invalid_request_body', param: 'body' },
  { name: 'JSON array', req: { body: '[]' }, status: 400, code: 'invalid_request_body', param: 'body' },
  { name: 'JSON number', req: { body: '42' }, status: 400, code: 'invalid_request_body', param: 'body' },
  { name: 'JSON string', req: { body: '"hi"' }, status: 400, code: 'invalid_request_body', param: 'body' },
  {
    name: 'truncated JSON',
    req: { body: '{"model":"good-bot","messa' },
    status: 400,
    code: 'invalid_request_body',
  },
  {
    name: 'trailing garbage',
    req: { body: '{"model":"good-bot"} x' },
    status: 400,
    code: 'invalid_request_body',
  },
  { name: 'single quotes', req: { body: "{'model':'good-bot'}" }, status: 400, code: 'invalid_request_body' },
  {
    name: 'messages nested 30 000 deep',
    req: { body: `{"model":"good-bot","messages":[${'['.repeat(30_000)}${']'.repeat(30_000)}]}` },
    status: 400,
    code: 'invalid_request_body',
    param: 'messages.0',
  },
  // model
  {
    name: 'missing model',
    req: { body: { messages: user() } },
    status: 400,
    code: 'invalid_request_body',
    param: 'model',
  },
  {
    name: 'model is a number',
    req: { body: { model: 7, messages: user() } },
    status: 400,
    code: 'invalid_request_body',
    param: 'model',
  },
  {
    name: 'model is empty',
    req: { body: { model: '', messages: user() } },
    status: 400,
    code: 'invalid_request_body',
    param: 'model',
  },
  {
    name: 'model of 201 characters',
    req: { body: { model: 'm'.repeat(201), messages: user() } },
    status: 400,
    code: 'invalid_request_body',
    param: 'model',
  },
  {
    name: 'model is an object',
    req: { body: { model: { name: 'good-bot' }, messages: user() } },
    status: 400,
    code: 'invalid_request_body',
    param: 'model',
  },
  {
    name: 'unknown route (key with every route)',
    req: { headers: asEval, body: { model: 'no-such-bot', messages: user() } },
    status: 404,
    code: 'model_not_found',
    param: 'model',
  },
  {
    name: 'route the key was not given',
    req: { body: { model: 'no-such-bot', messages: user() } },
    status: 403,
    code: 'permission_denied',
    param: 'model',
  },
  {
    name: 'model with a lone surrogate',
    req: { headers: asEval, body: '{"model":"bot\\ud800","messages":[{"role":"user","content":"hi"}]}' },
    status: 404,
    code: 'model_not_found',
    param: 'model',
  },
  {
    name: 'model with a NUL byte',
    req: { headers: asEval, body: '{"model":"good-bot\\u0000","messages":[{"role":"user","content":"hi"}]}' },
    status: 404,
    code: 'model_not_found',
    param: 'model',
  },
  // messages
  {
    name: 'missing messages',
    req: { body: { model: 'good-bot' } },
    status: 400,
    code: 'invalid_request_body',
    param: 'messages',
  },
  {
    name: 'messages is a string',
    req: { body: { model: 'good-bot', messages: 'hi' } },
    status: 400,
    code: 'invalid_request_body',
    param: 'messages',
  },
  {
    name: 'messages is empty',
    req: { body: { model: 'good-bot', messages: [] } },
    status: 400,
    code: 'invalid_request_body',
    param: 'messages',
  },
  {
    name: 'a message is null',
    req: { body: { model: 'good-bot', messages: [null] } },
    status: 400,
    code: 'invalid_request_body',
    param: 'messages.0',
  },
  {
    name: 'a message is an array',
    req: { body: { model: 'good-bot', messages: [['user', 'hi']] } },
    status: 400,
    code: 'invalid_request_body',
    param: 'messages.0',
  },
  {
    name: 'unknown role',
    req: { body: { model: 'good-bot', messages: [{ role: 'wizard', content: 'hi' }] } },
    status: 400,
    code: 'invalid_request_body',
    param: 'messages.0.role',
  },
  {
    name: 'role is a number',
    req: { body: { model: 'good-bot', messages: [{ role: 1, content: 'hi' }] } },
    status: 400,
    code: 'invalid_request_body',
    param: 'messages.0.role',
  },
  {
    name: 'role "__proto__"',
    req: { body: { model: 'good-bot', messages: [{ role: '__proto__', content: 'hi' }] } },
    status: 400,
    code: 'invalid_request_body',
    param: 'messages.0.role',
  },
  {
    name: 'role "constructor"',
    req: { body: { model: 'good-bot', messages: [{ role: 'constructor', content: 'hi' }] } },
    status: 400,
    code: 'invalid_request_body',
    param: 'messages.0.role',
  },
  // Other fields the gateway reads.
  {
    name: 'stream is a string',
    req: { body: ok({ stream: 'yes' }) },
    status: 400,
    code: 'invalid_request_body',
    param: 'stream',
  },
  {
    name: 'stream_options is a string',
    req: { body: ok({ stream_options: 'usage' }) },
    status: 400,
    code: 'invalid_request_body',
    param: 'stream_options',
  },
  {
    name: 'include_usage is a string',
    req: { body: ok({ stream_options: { include_usage: 'true' } }) },
    status: 400,
    code: 'invalid_request_body',
    param: 'stream_options.include_usage',
  },
  {
    name: 'user is a number',
    req: { body: ok({ user: 12 }) },
    status: 400,
    code: 'invalid_request_body',
    param: 'user',
  },
  {
    name: 'user of 257 characters',
    req: { body: ok({ user: 'u'.repeat(257) }) },
    status: 400,
    code: 'invalid_request_body',
    param: 'user',
  },
  {
    name: 'metadata is an array',
    req: { body: ok({ metadata: ['a'] }) },
    status: 400,
    code: 'invalid_request_body',
    param: 'metadata',
  },
  {
    name: 'metadata value is a number',
    req: { body: ok({ metadata: { team: 3 } }) },
    status: 400,
    code: 'invalid_request_body',
    param: 'metadata.team',
  },
  {
    name: 'metadata value of 513 characters',
    req: { body: ok({ metadata: { team: 't'.repeat(513) } }) },
    status: 400,
    code: 'invalid_request_body',
    param: 'metadata.team',
  },
  {
    name: 'reference_id from a key not marked for evaluation',
    req: { body: ok({ metadata: { reference_id: 'q-1' } }) },
    status: 403,
    code: 'permission_denied',
    param: 'metadata.reference_id',
  },
  // Prototype keys are plain data: they neither poison the parse nor reach a prototype.
  {
    name: '__proto__ carrying the model',
    req: { body: '{"__proto__":{"model":"good-bot"},"messages":[{"role":"user","content":"hi"}]}' },
    status: 400,
    code: 'invalid_request_body',
    param: 'model',
  },
  {
    name: 'constructor.prototype in the body',
    req: {
      body: '{"model":"good-bot","messages":[{"role":"user","content":"hi"}],"constructor":{"prototype":{"polluted":true}}}',
    },
    status: 200,
  },
  {
    name: '__proto__ inside metadata',
    req: {
      body: '{"model":"good-bot","messages":[{"role":"user","content":"hi"}],"metadata":{"__proto__":{"x":1}}}',
    },
    status: 400,
    code: 'invalid_request_body',
    param: 'metadata.__proto__',
  },
  // Text the model gets as the caller wrote it.
  {
    name: 'NUL bytes in the content',
    req: { body: ok({ messages: user('before\u0000after') }) },
    status: 200,
  },
  {
    name: 'a lone surrogate in the content',
    req: { body: '{"model":"good-bot","messages":[{"role":"user","content":"half \\udc00 a pair"}]}' },
    status: 200,
  },
  {
    name: 'invalid UTF-8 bytes in the content',
    req: {
      body: Buffer.concat([
        Buffer.from('{"model":"good-bot","messages":[{"role":"user","content":"'),
        Buffer.from([0xff, 0xfe, 0xc0]),
        Buffer.from('"}]}'),
      ]),
    },
    status: 200,
  },
  // Numbers and fields the upstream judges: its 400 comes back as the client's 400, never a 5xx.
  {
    name: 'max_tokens of 1e400',
    req: { body: '{"model":"good-bot","messages":[{"role":"user","content":"hi"}],"max_tokens":1e400}' },
    status: 400,
    code: 'upstream_rejected_request',
  },
  {
    name: 'max_tokens of -1',
    req: { body: ok({ max_tokens: -1 }) },
    status: 400,
    code: 'upstream_rejected_request',
  },
  // Headers, content types, encodings, sizes.
  {
    name: 'a charset parameter (JSON is UTF-8)',
    req: { headers: { 'content-type': 'application/json; charset=utf-8' }, body: ok() },
    status: 200,
  },
  {
    name: 'a user field with a lone surrogate',
    req: { body: '{"model":"good-bot","messages":[{"role":"user","content":"hi"}],"user":"u\\ud800"}' },
    status: 200,
  },
  {
    name: 'Bearer with two tokens',
    req: { headers: { authorization: `Bearer ${APP_KEY} ${APP_KEY}` }, body: ok() },
    status: 401,
    code: 'invalid_api_key',
  },
  {
    name: 'no content type',
    req: { headers: { 'content-type': null }, body: ok() },
    status: 415,
    code: 'unsupported_media_type',
  },
  {
    name: 'text/plain',
    req: { headers: { 'content-type': 'text/plain' }, body: ok() },
    status: 415,
    code: 'unsupported_media_type',
  },
  {
    name: 'form encoded',
    req: { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'model=good-bot' },
    status: 415,
    code: 'unsupported_media_type',
  },
  {
    name: 'gzip-encoded body',
    req: { headers: { 'content-encoding': 'gzip' }, body: zlib.gzipSync(JSON.stringify(ok())) },
    status: 415,
    code: 'unsupported_content_encoding',
  },
  {
    name: 'body over the limit',
    req: { body: ok({ messages: user('x'.repeat(BODY_LIMIT)) }) },
    status: 413,
    code: 'request_too_large',
  },
  {
    name: 'no Authorization',
    req: { headers: { authorization: null }, body: ok() },
    status: 401,
    code: 'invalid_api_key',
  },
  {
    name: 'Basic Authorization',
    req: { headers: { authorization: 'Basic YTpi' }, body: ok() },
    status: 401,
    code: 'invalid_api_key',
  },
  {
    name: 'unknown key',
    req: { headers: { authorization: 'Bearer sk-nobody-0123456789' }, body: ok() },
    status: 401,
    code: 'invalid_api_key',
  },
  {
    name: 'x-rollout-key of 257 characters',
    req: { headers: { 'x-rollout-key': 'k'.repeat(257) }, body: ok() },
    status: 400,
    code: 'invalid_request_body',
    param: 'x-rollout-key',
  },
  {
    name: 'headers over 16 KiB',
    req: { headers: { 'x-pad': 'p'.repeat(20 * 1024) }, body: ok() },
    status: 431,
    code: 'headers_too_large',
  },
  {
    name: 'an x-request-id of 1 000 characters is ignored',
    req: { headers: { 'x-request-id': 'r'.repeat(1000) }, body: ok() },
    status: 200,
  },
  // Paths and methods.
  { name: 'unknown path', req: { path: '/v1/nothing-here', body: ok() }, status: 404, code: 'unknown_url' },
  {
    name: 'GET on chat completions',
    req: { method: 'GET', path: '/v1/chat/completions' },
    status: 404,
    code: 'unknown_url',
  },
  {
    name: 'route state of an unknown route',
    req: { method: 'GET', path: '/v1/routes/nope', headers: asEval },
    status: 404,
    code: 'model_not_found',
  },
  // Feedback.
  {
    name: 'feedback without request_id',
    req: { path: '/v1/feedback', body: { score: 4 } },
    status: 400,
    code: 'invalid_request_body',
    param: 'request_id',
  },
  {
    name: 'feedback score 9',
    req: { path: '/v1/feedback', body: { request_id: 'r', score: 9 } },
    status: 400,
    code: 'invalid_request_body',
    param: 'score',
  },
  {
    name: 'feedback score "5"',
    req: { path: '/v1/feedback', body: { request_id: 'r', score: '5' } },
    status: 400,
    code: 'invalid_request_body',
    param: 'score',
  },
  {
    name: 'feedback score NaN-ish 1e400',
    req: { path: '/v1/feedback', body: '{"request_id":"r","score":1e400}' },
    status: 400,
    code: 'invalid_request_body',
    param: 'score',
  },
  {
    name: 'feedback thumbs sideways',
    req: { path: '/v1/feedback', body: { request_id: 'r', thumbs: 'sideways' } },
    status: 400,
    code: 'invalid_request_body',
    param: 'thumbs',
  },
  {
    name: 'feedback with neither score nor thumbs',
    req: { path: '/v1/feedback', body: { request_id: 'r' } },
    status: 400,
    code: 'invalid_request_body',
  },
  {
    name: 'feedback for a request never served',
    req: { path: '/v1/feedback', body: { request_id: 'never-served', score: 3 } },
    status: 404,
    code: 'request_not_found',
    param: 'request_id',
  },
  {
    name: 'feedback whose request_id holds a NUL byte',
    req: { path: '/v1/feedback', body: { request_id: 'abc\u0000def', score: 3 } },
    status: 404,
    code: 'request_not_found',
    param: 'request_id',
  },
  {
    name: 'PUT feedback for a request never served',
    req: { method: 'PUT', path: '/v1/feedback', body: { request_id: 'never-served', score: 3 } },
    status: 404,
    code: 'request_not_found',
    param: 'request_id',
  },
];

function expectOpenAIError(res: Response, c: Case): void {
  expect(res.headers['content-type']).toContain('application/json');
  expect(res.json).toEqual({
    error: {
      message: expect.any(String),
      type: expect.any(String),
      param: c.param === undefined ? expect.toBeOneOf([null, expect.any(String)]) : c.param,
      code: c.code ?? null,
    },
  });
  const { message } = (res.json as { error: { message: string } }).error;
  expect(message.length).toBeGreaterThan(0);
  expect(message).not.toContain(APP_KEY);
  expect(message).not.toContain(sim.url);
}

describe('bad input: each case gets its status and an OpenAI-style error', () => {
  it('has at least 40 cases', () => expect(CASES.length).toBeGreaterThanOrEqual(40));

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const res = await send(c.req);
    expect(res.status, res.text).toBe(c.status);
    if (c.status >= 400) expectOpenAIError(res, c);
    else expect((res.json as { object?: string }).object).toBe('chat.completion');
  });

  it('the events of answers with NUL bytes and lone surrogates were stored, not dropped', async () => {
    const count = async (like: string) =>
      (
        await db.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM request_events WHERE prompt::text LIKE $1 AND error_class IS NULL`,
          [like],
        )
      ).rows[0].n;
    await expect.poll(() => count('%before\uFFFDafter%'), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => count('%half \uFFFD a pair%'), { timeout: 10_000 }).toBe(1);
  });

  it('no prototype was polluted, and the gateway is up and healthy afterwards', async () => {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(child.exitCode).toBeNull();
    const health = await send({ method: 'GET', path: '/healthz', headers: { 'content-type': null } });
    expect(health.status).toBe(200);
  });
});

/** Any JSON value, with keys that tend to break code that trusts its input. */
const nastyKey = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    'model',
    'messages',
    'role',
    'content',
    'metadata',
    'stream',
    'user',
    'max_tokens',
    'reference_id',
    '',
  ),
  fc.string({ unit: 'binary', maxLength: 12 }),
);
const nastyValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(
      null,
      true,
      false,
      0,
      -1,
      1e308,
      -1e308,
      Number.MAX_SAFE_INTEGER + 2,
      0.5,
      '',
      'good-bot',
      'user',
      'up',
    ),
    fc.double(),
    fc.integer(),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(nastyKey, tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** A request body that is wrong somewhere: a whole random value, or a near-valid request with one part replaced. */
const badBody = fc.oneof(
  nastyValue,
  fc.record({ model: nastyValue, messages: fc.constant(user()) }),
  fc.record({ model: fc.constant('good-bot'), messages: nastyValue }),
  fc.record({
    model: fc.constant('good-bot'),
    messages: fc.array(nastyValue, { minLength: 1, maxLength: 3 }),
  }),
  fc.record(
    {
      model: fc.constant('good-bot'),
      messages: fc.constant(user()),
      stream: nastyValue,
      user: nastyValue,
      metadata: nastyValue,
    },
    { requiredKeys: ['model', 'messages'] },
  ),
  fc.dictionary(nastyKey, nastyValue).map((extra) => ({ ...extra, model: 'good-bot', messages: user() })),
);

/** JSON text, with lone surrogates kept as escapes and an occasional cut-off end. */
const bodyText = fc.tuple(badBody, fc.nat({ max: 9 })).map(([body, cut]) => {
  const text = JSON.stringify(body) ?? 'undefined';
  return cut === 0 ? text.slice(0, Math.max(0, text.length - 3)) : text;
});

/** Feedback bodies: random values in its fields, and well-formed ones whose request id is any text at all. */
const feedbackText = fc
  .oneof(
    fc.record(
      { request_id: nastyValue, score: nastyValue, thumbs: nastyValue, comment: nastyValue },
      { requiredKeys: [] },
    ),
    fc.record({
      request_id: fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }),
      score: fc.integer({ min: 1, max: 5 }),
      comment: fc.string({ unit: 'binary', maxLength: 60 }),
    }),
  )
  .map((body) => JSON.stringify(body));

describe('property: generated bad bodies never get a 5xx and never bring the gateway down', () => {
  it('chat completions and feedback, 300 bodies each', async () => {
    const statuses = new Map<string, number>();
    for (const [p, bodies] of [
      ['/v1/chat/completions', bodyText],
      ['/v1/feedback', fc.oneof(bodyText, feedbackText)],
    ] as const) {
      await fc.assert(
        fc.asyncProperty(bodies, async (text) => {
          const res = await send({ path: p, body: text });
          const key = `${p} ${res.status}`;
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
          if (res.status >= 500 || res.status < 200)
            throw new Error(`${res.status} for ${text}: ${res.text}`);
          if (res.status >= 400) {
            const error = (res.json as { error?: { message?: unknown; type?: unknown } } | undefined)?.error;
            if (typeof error?.message !== 'string' || typeof error.type !== 'string')
              throw new Error(`not an OpenAI-style error for ${text}: ${res.text}`);
          }
        }),
        { numRuns: 300 },
      );
    }
    // The generator reaches both sides: bodies refused by the gateway, and bodies that went upstream.
    expect(statuses.get('/v1/chat/completions 400')).toBeGreaterThan(50);
    expect(statuses.get('/v1/chat/completions 200')).toBeGreaterThan(5);
    expect(statuses.get('/v1/feedback 400')).toBeGreaterThan(50);
    expect(statuses.get('/v1/feedback 404')).toBeGreaterThan(20); // reached the database with odd ids
    expect(child.exitCode).toBeNull();
    const health = await send({ method: 'GET', path: '/healthz', headers: { 'content-type': null } });
    expect(health.status).toBe(200);
    expect(childLog).not.toMatch(/gateway request failed/);
    console.log(`[bad-input] generated bodies by status: ${JSON.stringify(Object.fromEntries(statuses))}`);
  }, 240_000);
});
