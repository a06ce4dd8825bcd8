import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createLeanOpenAICompatibleAdapter,
  createOpenAICompatibleAdapter,
  ProviderError,
  simulatorRegistry,
  type ChatMessage,
  type CompletionResult,
  type ProviderAdapter,
  type StreamEvent,
  type Target,
} from '../src/data-plane/providers';
import { startSimulator, type ErrorKind, type SimulatorHandle } from '../src/tooling/simulator';

/**
 * The lean undici transport and the `openai` SDK path must be interchangeable: the SAME cases, run
 * against the same seeded simulator through both, give identical normalized results and identical
 * errors (class, status, retryability, retry-after, message).
 */

const messages: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  {
    role: 'user',
    content:
      'Diego buys 8 notebooks at 8 dollars each and pays with a 100-dollar bill. How much change does Diego get, in dollars?',
  },
];
const SEED = 4242;

let sim: SimulatorHandle;
let sdk: ProviderAdapter;
let lean: ReturnType<typeof createLeanOpenAICompatibleAdapter>;

beforeAll(async () => {
  sim = await startSimulator({
    scenario: { seed: SEED, default: { latencyMs: { median: 0 }, accuracy: 0.5 } },
  });
  const registry = simulatorRegistry(sim.url);
  sdk = createOpenAICompatibleAdapter({ registry });
  lean = createLeanOpenAICompatibleAdapter({ registry });
});
afterAll(async () => {
  await lean?.close();
  await sim?.close();
});

/** The result minus what legitimately differs between two calls (timing, the simulator's response id). */
function comparable(result: CompletionResult) {
  const { latencyMs, timeToFirstTokenMs, providerRequestId, ...rest } = result;
  expect(providerRequestId).toMatch(/^chatcmpl-sim\w+$/);
  expect(latencyMs).toBeGreaterThan(0);
  if (timeToFirstTokenMs !== undefined) expect(timeToFirstTokenMs).toBeGreaterThan(0);
  return rest;
}

function comparableError(error: unknown) {
  expect(error).toBeInstanceOf(ProviderError);
  const e = error as ProviderError;
  // JSON parse positions depend on the (random-length) answer; the rest of the text must match.
  return {
    errorClass: e.errorClass,
    retryable: e.retryable,
    status: e.status,
    retryAfterMs: e.retryAfterMs,
    target: e.target,
    message: e.message
      .replace(/at position \d+/, 'at position N')
      .replace(/line \d+ column \d+/, 'line N column N'),
    name: e.name,
  };
}

type Outcome =
  { ok: true; value: unknown } | { ok: false; error: ReturnType<typeof comparableError>; deltas?: number };

/** Replays the same request on a freshly reset (so identically seeded) simulator for each transport. */
async function both(
  run: (adapter: ProviderAdapter) => Promise<Outcome>,
  setup?: () => void,
): Promise<[Outcome, Outcome]> {
  const outcomes: Outcome[] = [];
  for (const adapter of [sdk, lean]) {
    sim.reset();
    setup?.();
    outcomes.push(await run(adapter));
  }
  return outcomes as [Outcome, Outcome];
}

const complete =
  (target: Target, timeoutMs = 300) =>
  async (adapter: ProviderAdapter): Promise<Outcome> => {
    try {
      return { ok: true, value: comparable(await adapter.complete(target, messages, { timeoutMs })) };
    } catch (error) {
      return { ok: false, error: comparableError(error) };
    }
  };

const stream =
  (target: Target, timeoutMs = 300) =>
  async (adapter: ProviderAdapter): Promise<Outcome> => {
    const deltas: string[] = [];
    try {
      let done: CompletionResult | undefined;
      for await (const event of adapter.stream(target, messages, {
        timeoutMs,
      }) as AsyncIterable<StreamEvent>) {
        if (event.type === 'delta') deltas.push(event.text);
        else done = event.result;
      }
      return { ok: true, value: { deltas, result: comparable(done!) } };
    } catch (error) {
      return { ok: false, error: comparableError(error), deltas: deltas.length };
    }
  };

const TARGETS: Target[] = [
  { provider: 'openai', model: 'gpt-4o' },
  { provider: 'google', model: 'gemini-2.5-flash', params: { json: true } },
  { provider: 'deepseek', model: 'deepseek-chat', params: { maxTokens: 7, temperature: 0.2 } },
  { provider: 'openrouter', model: 'meta-llama/llama-3-70b' },
];

describe('SDK and lean transport give identical normalized results', () => {
  beforeEach(() => sim.reset());

  it.each(TARGETS)('complete $provider:$model', async (target) => {
    const [a, b] = await both(complete(target));
    expect(a.ok).toBe(true);
    expect(b).toEqual(a);
  });

  it.each(TARGETS)('stream $provider:$model', async (target) => {
    const [a, b] = await both(stream(target));
    expect(a.ok).toBe(true);
    expect(b).toEqual(a);
  });
});

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

describe('SDK and lean transport give identical errors', () => {
  const target: Target = { provider: 'openai', model: 'gpt-4o-mini' };
  const setup = (kind: ErrorKind) => () =>
    sim.setBehaviour(target.model, { errorRate: 1, errorKinds: { [kind]: 1 }, retryAfterSeconds: 3 });

  it.each(KINDS)('complete, %s', async (kind) => {
    const [a, b] = await both(complete(target), setup(kind));
    expect(a.ok).toBe(false);
    expect(b).toEqual(a);
  });

  it.each(KINDS)('stream, %s', async (kind) => {
    const [a, b] = await both(stream(target), setup(kind));
    expect(a.ok).toBe(false);
    expect(b).toEqual(a);
  });
});

describe('SDK and lean transport agree on timeouts inside a stream', () => {
  it('a stream that goes silent longer than the timeout after its first bytes is a timeout', async () => {
    const target: Target = { provider: 'openai', model: 'gpt-4o-slow' };
    const [a, b] = await both(stream(target, 150), () =>
      sim.setBehaviour(target.model, { streamChunkDelayMs: 400 }),
    );
    expect(a).toMatchObject({ ok: false, error: { errorClass: 'timeout' } });
    expect(b).toEqual(a);
  });
});
