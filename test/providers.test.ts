import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createAnthropicAdapter,
  createLeanOpenAICompatibleAdapter,
  createOpenAICompatibleAdapter,
  createProviderRegistry,
  ProviderError,
  simulatorRegistry,
  type ChatMessage,
  type CompletionResult,
  type ErrorClass,
  type ProviderAdapter,
  type StreamEvent,
  type Target,
} from '../src/data-plane/providers';
import { startSimulator, type SimulatorHandle } from '../src/tooling/simulator';
import type { ErrorKind } from '../src/tooling/simulator';

/**
 * Every provider family through its real SDK (and the lean transport) over HTTP to the simulator:
 * JSON and streaming answers, usage and cost, and each simulated failure mapped to its error class.
 */

const QUESTION =
  'A jacket costs 60 dollars and is discounted by 10 percent. What is the sale price in dollars?';
const messages: ChatMessage[] = [
  { role: 'system', content: 'You are a careful assistant.' },
  { role: 'user', content: QUESTION },
];

let sim: SimulatorHandle;
let anthropic: ProviderAdapter;
let openaiSdk: ProviderAdapter;
let lean: ReturnType<typeof createLeanOpenAICompatibleAdapter>;

beforeAll(async () => {
  sim = await startSimulator({ scenario: { default: { latencyMs: { median: 1 }, accuracy: 1 } } });
  const registry = simulatorRegistry(sim.url);
  anthropic = createAnthropicAdapter({ registry });
  openaiSdk = createOpenAICompatibleAdapter({ registry });
  lean = createLeanOpenAICompatibleAdapter({ registry });
});
afterAll(async () => {
  await lean?.close();
  await sim?.close();
});
beforeEach(() => sim.reset());

interface Family {
  name: string;
  target: Target;
  adapter: () => ProviderAdapter;
  /** USD per million tokens, input / output. */
  price: [number, number];
  overloadedStatus: number;
}

const families: Family[] = [
  {
    name: 'anthropic',
    target: { provider: 'anthropic', model: 'claude-sonnet-4' },
    adapter: () => anthropic,
    price: [3, 15],
    overloadedStatus: 529,
  },
  {
    name: 'openai (sdk)',
    target: { provider: 'openai', model: 'gpt-4o' },
    adapter: () => openaiSdk,
    price: [2.5, 10],
    overloadedStatus: 503,
  },
  {
    name: 'openai (lean)',
    target: { provider: 'openai', model: 'gpt-4o' },
    adapter: () => lean,
    price: [2.5, 10],
    overloadedStatus: 503,
  },
  {
    name: 'google (sdk)',
    target: { provider: 'google', model: 'gemini-2.5-pro' },
    adapter: () => openaiSdk,
    price: [1.25, 10],
    overloadedStatus: 503,
  },
  {
    name: 'google (lean)',
    target: { provider: 'google', model: 'gemini-2.5-pro' },
    adapter: () => lean,
    price: [1.25, 10],
    overloadedStatus: 503,
  },
  {
    name: 'deepseek (sdk)',
    target: { provider: 'deepseek', model: 'deepseek-chat' },
    adapter: () => openaiSdk,
    price: [0.27, 1.1],
    overloadedStatus: 503,
  },
  {
    name: 'deepseek (lean)',
    target: { provider: 'deepseek', model: 'deepseek-chat' },
    adapter: () => lean,
    price: [0.27, 1.1],
    overloadedStatus: 503,
  },
];

async function collect(stream: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const events: StreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ProviderError);
    return error as ProviderError;
  }
  throw new Error('expected the call to fail');
}

async function streamFailure(
  stream: AsyncIterable<StreamEvent>,
): Promise<{ error: ProviderError; events: StreamEvent[] }> {
  const events: StreamEvent[] = [];
  try {
    for await (const event of stream) events.push(event);
  } catch (error) {
    expect(error).toBeInstanceOf(ProviderError);
    return { error: error as ProviderError, events };
  }
  throw new Error(`expected the stream to fail, got ${events.length} events`);
}

function expectCost(result: CompletionResult, [input, output]: [number, number]): void {
  expect(result.usage.inputTokens).toBeGreaterThan(0);
  expect(result.usage.outputTokens).toBeGreaterThan(0);
  expect(result.costKnown).toBe(true);
  expect(result.costUsd).toBeCloseTo(
    (result.usage.inputTokens * input + result.usage.outputTokens * output) / 1e6,
    12,
  );
}

const ERROR_CASES: {
  kind: ErrorKind;
  errorClass: ErrorClass;
  retryable: boolean;
  status?: (f: Family) => number | undefined;
}[] = [
  { kind: 'rate_limit', errorClass: 'rate_limited', retryable: true, status: () => 429 },
  { kind: 'server_error', errorClass: 'server_error', retryable: true, status: () => 500 },
  { kind: 'overloaded', errorClass: 'overloaded', retryable: true, status: (f) => f.overloadedStatus },
  { kind: 'timeout', errorClass: 'timeout', retryable: true },
  { kind: 'malformed', errorClass: 'malformed_response', retryable: true },
  { kind: 'drop_mid_stream', errorClass: 'connection', retryable: true },
  { kind: 'bad_request', errorClass: 'bad_request', retryable: false, status: () => 400 },
  { kind: 'auth', errorClass: 'auth', retryable: false, status: () => 401 },
];

describe.each(families)('$name', (family) => {
  const { target } = family;

  it('answers a JSON (non-streaming) request with usage, cost and ids', async () => {
    const result = await family.adapter().complete(target, messages);
    expect(result.target).toBe(target);
    expect(result.text).toContain('Answer: 54');
    expect(result.finishReason).toBe('stop');
    expect(result.latencyMs).toBeGreaterThan(0);
    expect(result.providerRequestId).toMatch(/^(msg_|chatcmpl-)/);
    expectCost(result, family.price);
  });

  it('streams deltas, then one done event whose text is the deltas joined, with usage at the end', async () => {
    const events = await collect(family.adapter().stream(target, messages));
    const deltas = events.filter((e) => e.type === 'delta');
    expect(deltas.length).toBeGreaterThan(1);
    expect(events.filter((e) => e.type === 'done')).toHaveLength(1);
    const done = events.at(-1)!;
    if (done.type !== 'done') throw new Error('last event must be done');
    expect(done.result.text).toBe(deltas.map((d) => (d.type === 'delta' ? d.text : '')).join(''));
    expect(done.result.text).toContain('Answer: 54');
    expect(done.result.finishReason).toBe('stop');
    expect(done.result.timeToFirstTokenMs).toBeGreaterThan(0);
    expect(done.result.timeToFirstTokenMs).toBeLessThanOrEqual(done.result.latencyMs);
    expectCost(done.result, family.price);
  });

  it('asks for JSON and gets parseable JSON (params.json)', async () => {
    const jsonTarget: Target = { ...target, params: { json: true, temperature: 0 } };
    const result = await family.adapter().complete(jsonTarget, messages);
    expect(JSON.parse(result.text)).toMatchObject({ answer: '54' });
    const events = await collect(family.adapter().stream(jsonTarget, messages));
    const done = events.at(-1)!;
    expect(done.type === 'done' && JSON.parse(done.result.text)).toMatchObject({ answer: '54' });
  });

  it('reports truncation by the token limit as finishReason "length"', async () => {
    const short: Target = { ...target, params: { maxTokens: 3 } };
    const result = await family.adapter().complete(short, messages);
    expect(result.finishReason).toBe('length');
    expect(result.usage.outputTokens).toBe(3);
    const events = await collect(family.adapter().stream(short, messages));
    const done = events.at(-1)!;
    expect(done.type === 'done' && done.result.finishReason).toBe('length');
  });

  describe.each(ERROR_CASES)('error kind $kind', ({ kind, errorClass, retryable, status }) => {
    beforeEach(() => {
      sim.setBehaviour(target.model, {
        errorRate: 1,
        errorKinds: { [kind]: 1 },
        latencyMs: { median: 1 },
        retryAfterSeconds: 2,
      });
    });

    it(`maps to ${errorClass} (complete)`, async () => {
      const error = await failure(family.adapter().complete(target, messages, { timeoutMs: 300 }));
      expect(error.errorClass).toBe(errorClass);
      expect(error.retryable).toBe(retryable);
      expect(error.target).toBe(`${target.provider}:${target.model}`);
      expect(error.status).toBe(status?.(family));
      if (kind === 'rate_limit') expect(error.retryAfterMs).toBe(2000);
      expect(error.message).toContain(`${target.provider}:${target.model}`);
    });

    it(`maps to ${errorClass} (stream)`, async () => {
      const { error, events } = await streamFailure(
        family.adapter().stream(target, messages, { timeoutMs: 300 }),
      );
      expect(error.errorClass).toBe(errorClass);
      expect(error.retryable).toBe(retryable);
      expect(events.some((e) => e.type === 'done')).toBe(false);
      if (kind === 'drop_mid_stream') {
        // The connection died after some text: the caller saw deltas, then an error, never a `done`.
        expect(events.filter((e) => e.type === 'delta').length).toBeGreaterThan(0);
      }
    });
  });
});

describe('registry and keys', () => {
  it('a missing key for a real provider is a non-retryable auth error naming the env var', async () => {
    const registry = createProviderRegistry({ env: {} });
    for (const [adapter, target, envVar] of [
      [
        createOpenAICompatibleAdapter({ registry }),
        { provider: 'openai', model: 'gpt-4o' },
        'OPENAI_API_KEY',
      ],
      [
        createLeanOpenAICompatibleAdapter({ registry }),
        { provider: 'google', model: 'gemini-2.5-pro' },
        'GEMINI_API_KEY',
      ],
      [
        createAnthropicAdapter({ registry }),
        { provider: 'anthropic', model: 'claude-sonnet-4' },
        'ANTHROPIC_API_KEY',
      ],
    ] as const) {
      const error = await failure(adapter.complete(target, messages));
      expect(error.errorClass).toBe('auth');
      expect(error.retryable).toBe(false);
      expect(error.message).toContain(envVar);
    }
  });

  it('an unknown provider needs a base URL; with one (config or <NAME>_BASE_URL) it is openai-compatible', async () => {
    const noUrl = createProviderRegistry({ env: {} });
    const error = await failure(
      createLeanOpenAICompatibleAdapter({ registry: noUrl }).complete(
        { provider: 'vllm', model: 'llama' },
        messages,
      ),
    );
    expect(error.errorClass).toBe('not_found');
    expect(error.message).toContain('VLLM_BASE_URL');

    const viaEnv = createProviderRegistry({
      env: { VLLM_BASE_URL: sim.openaiBaseUrl, VLLM_API_KEY: 'sk-sim-vllm-key' },
    });
    const result = await createLeanOpenAICompatibleAdapter({ registry: viaEnv }).complete(
      { provider: 'vllm', model: 'llama' },
      messages,
    );
    expect(result.text).toContain('54');
    expect(result.costKnown).toBe(false);
    expect(result.costUsd).toBe(0);

    const keyless = createProviderRegistry({
      env: {},
      providers: { local: { baseUrl: sim.openaiBaseUrl, requiresKey: false } },
    });
    expect(keyless.check({ provider: 'local', model: 'x' })).toEqual([]);
    const local = await createOpenAICompatibleAdapter({ registry: keyless }).complete(
      { provider: 'local', model: 'x' },
      messages,
    );
    expect(local.text).toContain('54');
  });

  it('precedence: allowed target baseUrl > config > env <NAME>_BASE_URL > default', () => {
    const registry = createProviderRegistry({
      env: {
        OPENAI_BASE_URL: 'http://env.example/v1',
        DEEPSEEK_BASE_URL: 'http://env-ds.example',
        OPENAI_ALLOWED_BASE_URLS: 'http://other.example/v1',
      },
      providers: {
        openai: { baseUrl: 'http://config.example/v1', allowedBaseUrls: ['http://target.example'] },
      },
    });
    expect(registry.resolve({ provider: 'openai', model: 'm' }).baseUrl).toBe('http://config.example/v1');
    expect(
      registry.resolve({ provider: 'openai', model: 'm', baseUrl: 'http://target.example' }).baseUrl,
    ).toBe('http://target.example');
    expect(
      registry.resolve({ provider: 'openai', model: 'm', baseUrl: 'http://other.example/v1/' }).baseUrl,
    ).toBe('http://other.example/v1/');
    // Any other host is refused before a key is read, and the reason names the host, not the allowlist.
    expect(() =>
      registry.resolve({ provider: 'openai', model: 'm', baseUrl: 'http://evil.example/v1' }),
    ).toThrow(/evil\.example is not an endpoint of provider "openai"/);
    expect(registry.endpointProblem({ provider: 'openai', baseUrl: 'http://target.example:8080' })).toMatch(
      /not an endpoint/,
    );
    expect(
      registry.endpointProblem({ provider: 'openai', baseUrl: 'http://config.example/v1' }),
    ).toBeUndefined();
    expect(
      registry.check({ provider: 'deepseek', model: 'm', baseUrl: 'http://user:pw@env-ds.example' })[0],
    ).toMatch(/without credentials/);
    expect(registry.resolve({ provider: 'deepseek', model: 'm' }).baseUrl).toBe('http://env-ds.example');
    expect(registry.resolve({ provider: 'google', model: 'm' }).baseUrl).toBe(
      'https://generativelanguage.googleapis.com/v1beta/openai/',
    );
    expect(registry.resolve({ provider: 'anthropic', model: 'm' }).apiKeyEnv).toBe('ANTHROPIC_API_KEY');
    expect(registry.check({ provider: 'openrouter', model: 'meta-llama/llama-3-70b' })).toEqual([
      'OPENROUTER_API_KEY is not set',
    ]);
  });

  it('honours the caller signal as cancellation, not timeout', async () => {
    sim.setBehaviour('gpt-4o', { errorRate: 1, errorKinds: { timeout: 1 } });
    for (const adapter of [openaiSdk, lean, anthropic]) {
      const controller = new AbortController();
      const target =
        adapter === anthropic
          ? { provider: 'anthropic', model: 'gpt-4o' }
          : { provider: 'openai', model: 'gpt-4o' };
      setTimeout(() => controller.abort(), 50);
      const error = await failure(
        adapter.complete(target, messages, { signal: controller.signal, timeoutMs: 5000 }),
      );
      expect(error.errorClass).toBe('cancelled');
      expect(error.retryable).toBe(false);
    }
  });
});

describe('lean completeRaw', () => {
  it('returns the upstream bytes alongside the normalized result (same parse)', async () => {
    const { result, raw, contentType } = await lean.completeRaw(
      { provider: 'openai', model: 'gpt-4o' },
      messages,
    );
    expect(contentType).toMatch(/application\/json/);
    const json = JSON.parse(raw.toString('utf8'));
    expect(json.choices[0].message.content).toBe(result.text);
    expect(json.id).toBe(result.providerRequestId);
    expect(json.usage.completion_tokens).toBe(result.usage.outputTokens);
  });
});
