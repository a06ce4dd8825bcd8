import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import util from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ChainExhaustedError,
  createAnthropicAdapter,
  createFallbackChain,
  createLeanOpenAICompatibleAdapter,
  createOpenAICompatibleAdapter,
  ProviderError,
  scrubSecrets,
  simulatorRegistry,
  type ChainStreamEvent,
  type ChatMessage,
  type ProviderAdapter,
  type Target,
} from '../src/data-plane/providers';
import { startSimulator, type ErrorKind, type SimulatorHandle } from '../src/tooling/simulator';

/**
 * No API key in any error message, thrown object, stack, inspection or log line. Real-looking keys are
 * put in the environment for every provider; the simulator accepts any key; every error kind is
 * triggered through every transport and through the chain.
 */

const SECRET = 'sk-test-SECRETKEY-1234567890';
const ENV_VARS = [
  'ANTHROPIC_API_KEY',
  'OPENAI_API_KEY',
  'GEMINI_API_KEY',
  'DEEPSEEK_API_KEY',
  'OPENROUTER_API_KEY',
];
const messages: ChatMessage[] = [{ role: 'user', content: 'What is the capital of France?' }];
const KINDS: ErrorKind[] = [
  'rate_limit',
  'server_error',
  'overloaded',
  'timeout',
  'malformed',
  'drop_mid_stream',
  'bad_request',
  'auth',
];

let sim: SimulatorHandle;
const saved: Record<string, string | undefined> = {};
const logLines: string[] = [];
const consoleLines: string[] = [];
const captureLogger = pino(
  { level: 'trace' },
  new Writable({
    write(chunk, _encoding, callback) {
      logLines.push(String(chunk));
      callback();
    },
  }),
);

beforeAll(async () => {
  for (const name of ENV_VARS) {
    saved[name] = process.env[name];
    process.env[name] = SECRET;
  }
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      consoleLines.push(util.format(...args));
    });
  }
  sim = await startSimulator({ scenario: { default: { latencyMs: { median: 1 } } } });
});
afterAll(async () => {
  for (const name of ENV_VARS) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
  vi.restoreAllMocks();
  await sim?.close();
});

function expectNoSecret(error: unknown): void {
  expect(error).toBeInstanceOf(ProviderError);
  const e = error as ProviderError;
  const renderings = [
    JSON.stringify(e),
    String(e),
    e.message,
    e.stack ?? '',
    util.inspect(e, { depth: 10, showHidden: true }),
    JSON.stringify(e.attempts ?? []),
  ];
  for (const text of renderings) {
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('SECRETKEY');
  }
  // No SDK error, response headers or request options hang off the object.
  expect((e as { cause?: unknown }).cause).toBeUndefined();
  expect(Object.keys(e)).not.toContain('headers');
}

async function catchError(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

describe('no API key leaks', () => {
  const registryFor = () => simulatorRegistry(sim.url, { keys: 'env' });
  const cases: [string, () => ProviderAdapter, Target][] = [
    [
      'anthropic sdk',
      () => createAnthropicAdapter({ registry: registryFor() }),
      { provider: 'anthropic', model: 'leak-a' },
    ],
    [
      'openai sdk',
      () => createOpenAICompatibleAdapter({ registry: registryFor() }),
      { provider: 'openai', model: 'leak-o' },
    ],
    [
      'google lean',
      () => createLeanOpenAICompatibleAdapter({ registry: registryFor() }),
      { provider: 'google', model: 'leak-g' },
    ],
    [
      'deepseek lean',
      () => createLeanOpenAICompatibleAdapter({ registry: registryFor() }),
      { provider: 'deepseek', model: 'leak-d' },
    ],
  ];

  it.each(cases)('%s: every error kind, complete and stream', async (_name, make, target) => {
    const adapter = make();
    // The key really is used (the simulator refuses keyless requests): a healthy call works.
    sim.setBehaviour(target.model, { errorRate: 0 });
    await expect(adapter.complete(target, messages)).resolves.toMatchObject({ target });
    for (const kind of KINDS) {
      sim.setBehaviour(target.model, { errorRate: 1, errorKinds: { [kind]: 1 } });
      expectNoSecret(await catchError(() => adapter.complete(target, messages, { timeoutMs: 200 })));
      expectNoSecret(
        await catchError(async () => {
          for await (const _event of adapter.stream(target, messages, { timeoutMs: 200 })) void _event;
        }),
      );
    }
    await (adapter as { close?: () => Promise<void> }).close?.();
  });

  it('through the chain (complete and stream), with logs captured at trace level', async () => {
    const chain = createFallbackChain({
      registry: registryFor(),
      logger: captureLogger,
      perAttemptTimeoutMs: 200,
      breaker: { failureThreshold: 2 },
    });
    const targets: Target[] = [
      { provider: 'anthropic', model: 'chain-a' },
      { provider: 'openai', model: 'chain-o' },
      { provider: 'google', model: 'chain-g' },
      { provider: 'deepseek', model: 'chain-d' },
    ];
    for (const kind of KINDS) {
      for (const target of targets)
        sim.setBehaviour(target.model, { errorRate: 1, errorKinds: { [kind]: 1 } });
      const error = await catchError(() => chain.complete(targets, messages));
      expectNoSecret(error);
      const events: ChainStreamEvent[] = [];
      for await (const event of chain.stream(targets, messages)) events.push(event);
      const last = events.at(-1)!;
      if (last.type !== 'error') throw new Error('expected an error event');
      expectNoSecret(last.error);
      expect(JSON.stringify(last.attempts)).not.toContain(SECRET);
    }
    const exhausted = await catchError(() => chain.complete(targets, messages));
    expect(exhausted).toBeInstanceOf(ChainExhaustedError);
    await chain.close();
    expect(logLines.length).toBeGreaterThan(0); // the capture works (breaker and debug lines)
    for (const line of [...logLines, ...consoleLines]) expect(line).not.toContain('SECRETKEY');
  });

  it('a missing key error names the variable, not a value', async () => {
    const registry = simulatorRegistry(sim.url, { keys: 'env', env: {} });
    const error = await catchError(() =>
      createOpenAICompatibleAdapter({ registry }).complete({ provider: 'openai', model: 'x' }, messages),
    );
    expectNoSecret(error);
    expect((error as ProviderError).message).toContain('OPENAI_API_KEY');
  });

  it('scrubs a key that an upstream echoes back in its error body (all transports)', async () => {
    // An upstream that quotes the credentials it received, as some proxies and providers do.
    const echo = http.createServer((req, res) => {
      const credential = req.headers.authorization ?? req.headers['x-api-key'];
      const status = req.url?.includes('messages') ? 403 : 401;
      res.writeHead(status, { 'content-type': 'application/json', 'x-echo': String(credential) });
      res.end(
        JSON.stringify({
          type: 'error',
          error: { type: 'authentication_error', message: `Incorrect API key provided: ${credential}` },
        }),
      );
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
    try {
      const registry = simulatorRegistry(url, { keys: 'env' });
      const adapters: [ProviderAdapter, Target][] = [
        [createAnthropicAdapter({ registry }), { provider: 'anthropic', model: 'm' }],
        [createOpenAICompatibleAdapter({ registry }), { provider: 'openai', model: 'm' }],
        [createLeanOpenAICompatibleAdapter({ registry }), { provider: 'deepseek', model: 'm' }],
      ];
      for (const [adapter, target] of adapters) {
        const error = await catchError(() => adapter.complete(target, messages));
        expectNoSecret(error);
        expect((error as ProviderError).message).toMatch(
          /Incorrect API key provided: (Bearer )?\[redacted\]/,
        );
        expect(['auth', 'permission']).toContain((error as ProviderError).errorClass);
        const streamError = await catchError(async () => {
          for await (const _event of adapter.stream(target, messages)) void _event;
        });
        expectNoSecret(streamError);
        await (adapter as { close?: () => Promise<void> }).close?.();
      }
    } finally {
      echo.closeAllConnections();
      await new Promise((resolve) => echo.close(resolve));
    }
  });

  it('scrubs known env key values and key-shaped strings out of provider messages', () => {
    const error = new ProviderError({
      errorClass: 'auth',
      target: 'openai:gpt-4o',
      message: `Incorrect API key provided: ${SECRET}. Also sk-proj-abcdefghijklmnop, Bearer abcdefghijklmnopqrstu, x-api-key: zzzzzzzzzzzzzz, AIzaSyA1234567890abcdefghijklmnop`,
    });
    expectNoSecret(error);
    expect(error.message).not.toMatch(
      /sk-proj-abcdefghijklmnop|abcdefghijklmnopqrstu|zzzzzzzzzzzzzz|AIzaSyA/,
    );
    expect(error.message).toContain('Bearer [redacted]');
    expect(error.message).toContain('x-api-key: [redacted]');
    expect(scrubSecrets(`custom ${SECRET.slice(0, 4)}`)).toBe('custom sk-t');
  });
});
