import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ChainExhaustedError,
  createFallbackChain,
  ProviderError,
  simulatorRegistry,
  withDefaultCheck,
  type ChainStreamEvent,
  type ChatMessage,
  type FallbackChain,
  type ProviderRegistry,
  type Target,
} from '../src/data-plane/providers';
import { findQuestionByPrompt, startSimulator, type SimulatorHandle } from '../src/tooling/simulator';

/** The fallback chain over the real adapters and SDKs, against the simulator. No mocks. */

const QUESTION = 'The average of 5 numbers is 46. What is their sum?';
const messages: ChatMessage[] = [{ role: 'user', content: QUESTION }];

const anthropic: Target = { provider: 'anthropic', model: 'claude-sonnet-4' };
const openai: Target = { provider: 'openai', model: 'gpt-4o' };
const google: Target = { provider: 'google', model: 'gemini-2.5-pro' };
const deepseek: Target = { provider: 'deepseek', model: 'deepseek-chat' };
const CHAIN = [anthropic, openai, google, deepseek];

let sim: SimulatorHandle;
let registry: ProviderRegistry;
const chains: FallbackChain[] = [];

function chain(options: Parameters<typeof createFallbackChain>[0] = {}): FallbackChain {
  const created = createFallbackChain({ registry, perAttemptTimeoutMs: 500, ...options });
  chains.push(created);
  return created;
}

beforeAll(async () => {
  sim = await startSimulator({ scenario: { default: { latencyMs: { median: 1 }, accuracy: 1 } } });
  registry = simulatorRegistry(sim.url);
});
afterAll(async () => {
  for (const c of chains) await c.close();
  await sim?.close();
});
beforeEach(() => sim.reset());

function fail(
  model: string,
  kind:
    | 'rate_limit'
    | 'server_error'
    | 'overloaded'
    | 'timeout'
    | 'malformed'
    | 'drop_mid_stream'
    | 'bad_request'
    | 'auth',
) {
  sim.setBehaviour(model, { errorRate: 1, errorKinds: { [kind]: 1 }, latencyMs: { median: 1 } });
}

async function collect(stream: AsyncIterable<ChainStreamEvent>): Promise<ChainStreamEvent[]> {
  const events: ChainStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ProviderError);
    return error as ProviderError;
  }
  throw new Error('expected a rejection');
}

describe.each(['lean', 'sdk'] as const)('fallback chain (%s transport)', (transport) => {
  it('answers from the primary when it is healthy (depth 0, one attempt)', async () => {
    const result = await chain({ transport }).complete(CHAIN, messages);
    expect(result.fallbackDepth).toBe(0);
    expect(result.target).toBe(anthropic);
    expect(result.text).toContain('Answer: 230');
    expect(result.attempts).toEqual([{ target: 'anthropic:claude-sonnet-4', latencyMs: result.latencyMs }]);
  });

  it('falls through anthropic → openai → google → deepseek, reporting every attempt', async () => {
    fail('claude-sonnet-4', 'overloaded');
    fail('gpt-4o', 'rate_limit');
    fail('gemini-2.5-pro', 'server_error');
    const result = await chain({ transport }).complete(CHAIN, messages);
    expect(result.fallbackDepth).toBe(3);
    expect(result.target).toBe(deepseek);
    expect(result.text).toContain('230');
    expect(result.attempts.map((a) => [a.target, a.errorClass, a.status])).toEqual([
      ['anthropic:claude-sonnet-4', 'overloaded', 529],
      ['openai:gpt-4o', 'rate_limited', 429],
      ['google:gemini-2.5-pro', 'server_error', 500],
      ['deepseek:deepseek-chat', undefined, undefined],
    ]);
    expect(result.attempts[1].retryAfterMs).toBe(1000);
    for (const attempt of result.attempts) expect(attempt.latencyMs).toBeGreaterThan(0);
    expect(result.attempts[0].message).toContain('overloaded');
  });

  it('falls through on timeout, malformed body and dropped connection', async () => {
    fail('claude-sonnet-4', 'timeout');
    fail('gpt-4o', 'malformed');
    fail('gemini-2.5-pro', 'drop_mid_stream');
    const result = await chain({ transport, perAttemptTimeoutMs: 1000 }).complete(CHAIN, messages);
    expect(result.fallbackDepth).toBe(3);
    expect(result.attempts.map((a) => a.errorClass)).toEqual([
      'timeout',
      'malformed_response',
      'connection',
      undefined,
    ]);
    expect(result.attempts[0].latencyMs).toBeGreaterThanOrEqual(190);
  });

  it('moves on after auth (target-specific) but stops on bad_request (request-specific)', async () => {
    fail('claude-sonnet-4', 'auth');
    const moved = await chain({ transport }).complete(CHAIN, messages);
    expect(moved.fallbackDepth).toBe(1);
    expect(moved.attempts[0]).toMatchObject({ errorClass: 'auth', status: 401 });

    sim.reset();
    fail('claude-sonnet-4', 'bad_request');
    const error = await rejection(chain({ transport }).complete(CHAIN, messages));
    expect(error).not.toBeInstanceOf(ChainExhaustedError);
    expect(error.errorClass).toBe('bad_request');
    expect(error.retryable).toBe(false);
    expect(error.attempts).toEqual([
      expect.objectContaining({
        target: 'anthropic:claude-sonnet-4',
        errorClass: 'bad_request',
        status: 400,
      }),
    ]);
    // Nothing after the 400 was called.
    expect(sim.stats().byModel).toEqual({ 'claude-sonnet-4': 1 });
  });

  it('when every target fails, throws ChainExhaustedError listing target, class, message and latency', async () => {
    for (const model of ['claude-sonnet-4', 'gpt-4o', 'gemini-2.5-pro', 'deepseek-chat'])
      fail(model, 'server_error');
    sim.setBehaviour('gpt-4o', { errorRate: 1, errorKinds: { rate_limit: 1 }, retryAfterSeconds: 7 });
    const error = await rejection(chain({ transport }).complete(CHAIN, messages));
    expect(error).toBeInstanceOf(ChainExhaustedError);
    expect(error.attempts).toHaveLength(4);
    expect(error.errorClass).toBe('server_error');
    expect(error.retryable).toBe(true);
    expect(error.retryAfterMs).toBe(7000);
    for (const target of [
      'anthropic:claude-sonnet-4',
      'openai:gpt-4o',
      'google:gemini-2.5-pro',
      'deepseek:deepseek-chat',
    ]) {
      expect(error.message).toContain(target);
    }
    expect(error.message).toMatch(
      /openai:gpt-4o rate_limited 429 "429 Rate limit reached[^"]*" after \d+ ms/,
    );
  });

  it('streams from the first healthy target when earlier ones fail before any delta', async () => {
    fail('claude-sonnet-4', 'server_error');
    fail('gpt-4o', 'timeout');
    const events = await collect(chain({ transport, perAttemptTimeoutMs: 1000 }).stream(CHAIN, messages));
    const last = events.at(-1)!;
    if (last.type !== 'done') throw new Error(`expected done, got ${JSON.stringify(last)}`);
    expect(last.result.fallbackDepth).toBe(2);
    expect(last.result.attempts.map((a) => a.errorClass)).toEqual(['server_error', 'timeout', undefined]);
    const text = events.map((e) => (e.type === 'delta' ? e.text : '')).join('');
    expect(text).toBe(last.result.text);
    expect(text).toContain('230');
  });

  it('a connection drop mid-stream yields an error event after the partial text, never a clean end', async () => {
    fail('claude-sonnet-4', 'drop_mid_stream');
    const events = await collect(chain({ transport }).stream(CHAIN, messages));
    const deltas = events.filter((e) => e.type === 'delta');
    expect(deltas.length).toBeGreaterThan(0);
    expect(events.some((e) => e.type === 'done')).toBe(false);
    const last = events.at(-1)!;
    if (last.type !== 'error') throw new Error('expected an error event');
    expect(last.partial).toBe(true);
    expect(last.error.errorClass).toBe('connection');
    expect(last.attempts).toEqual([
      expect.objectContaining({ target: 'anthropic:claude-sonnet-4', errorClass: 'connection' }),
    ]);
    // No fallback after text reached the caller.
    expect(sim.stats().byModel).toEqual({ 'claude-sonnet-4': 1 });
  });

  it('a malformed chunk mid-stream (OpenAI-compatible) is an error event too', async () => {
    fail('gpt-4o', 'malformed');
    const events = await collect(chain({ transport }).stream([openai, google], messages));
    const last = events.at(-1)!;
    expect(last.type === 'error' && [last.partial, last.error.errorClass]).toEqual([
      true,
      'malformed_response',
    ]);
  });

  it('a stream that fails with a non-retryable error stops with an error event (partial: false)', async () => {
    fail('claude-sonnet-4', 'bad_request');
    const events = await collect(chain({ transport }).stream(CHAIN, messages));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'error', partial: false, error: { errorClass: 'bad_request' } });
  });

  it('a fully failed stream ends with a ChainExhaustedError event', async () => {
    for (const model of ['claude-sonnet-4', 'gpt-4o']) fail(model, 'overloaded');
    const events = await collect(chain({ transport }).stream([anthropic, openai], messages));
    expect(events).toHaveLength(1);
    const [event] = events;
    expect(event.type === 'error' && event.error).toBeInstanceOf(ChainExhaustedError);
  });
});

describe('quality checks', () => {
  it('json requested and the answer truncated into invalid JSON → next target', async () => {
    const truncated: Target = { ...anthropic, params: { json: true, maxTokens: 5 } };
    const fine: Target = { ...openai, params: { json: true } };
    const result = await chain().complete([truncated, fine], messages);
    expect(result.fallbackDepth).toBe(1);
    expect(result.attempts[0]).toMatchObject({
      target: 'anthropic:claude-sonnet-4',
      errorClass: 'quality_check',
    });
    expect(result.attempts[0].message).toMatch(/not valid JSON/);
    expect(JSON.parse(result.text)).toMatchObject({ answer: '230' });
  });

  it('allowTruncation: false fails an answer cut at the token limit', async () => {
    const short: Target = { ...google, params: { maxTokens: 4 } };
    const allowed = await chain().complete([short, deepseek], messages);
    expect(allowed.fallbackDepth).toBe(0);
    expect(allowed.finishReason).toBe('length');
    const strict = await chain().complete([short, deepseek], messages, { allowTruncation: false });
    expect(strict.fallbackDepth).toBe(1);
    expect(strict.attempts[0].message).toMatch(/truncated/);
  });

  it('a custom async check (graded against the reference answer) moves past a wrong answer', async () => {
    sim.setBehaviour('gpt-4o', { accuracy: 0 });
    const reference = findQuestionByPrompt(QUESTION)!.reference;
    const graded = chain({
      qualityCheck: withDefaultCheck(async (result) =>
        result.text.includes(`Answer: ${reference}`) ? { ok: true } : { ok: false, reason: 'wrong answer' },
      ),
    });
    const result = await graded.complete([openai, deepseek], messages);
    expect(result.fallbackDepth).toBe(1);
    expect(result.attempts[0]).toMatchObject({ errorClass: 'quality_check', message: 'wrong answer' });

    // In a stream the check can only run at the end, after the deltas were shown: no fallback is
    // possible any more, so the failure surfaces as an explicit error event.
    const events = await collect(graded.stream([openai, deepseek], messages));
    const last = events.at(-1)!;
    expect(last).toMatchObject({ type: 'error', partial: true, error: { errorClass: 'quality_check' } });
  });
});

describe('quality check edge cases', () => {
  it('a check that throws counts as a failed check, not as the end of the chain', async () => {
    let calls = 0;
    const c = chain({
      qualityCheck: () => {
        if (calls++ === 0) throw new Error('validator crashed');
        return { ok: true };
      },
    });
    const result = await c.complete([openai, deepseek], messages);
    expect(result.fallbackDepth).toBe(1);
    expect(result.attempts[0]).toMatchObject({
      errorClass: 'quality_check',
      message: 'quality check threw: validator crashed',
    });
  });

  it('an empty target list is an exhausted chain', async () => {
    const error = await rejection(chain().complete([], messages));
    expect(error).toBeInstanceOf(ChainExhaustedError);
    expect(error.attempts).toEqual([]);
  });
});

describe('circuit breaker in the chain', () => {
  it('opens after N consecutive failures, skips the target, then one half-open trial closes it', async () => {
    let now = 1_000_000;
    const c = chain({ breaker: { failureThreshold: 2, cooldownMs: 10_000, now: () => now } });
    fail('claude-sonnet-4', 'server_error');
    for (let i = 0; i < 2; i++)
      expect((await c.complete([anthropic, openai], messages)).fallbackDepth).toBe(1);
    expect(c.breakerStates().find((s) => s.target === 'anthropic:claude-sonnet-4')).toMatchObject({
      state: 'open',
      consecutiveFailures: 2,
      openedAt: now,
    });

    // Open: the primary is not called at all.
    const skipped = await c.complete([anthropic, openai], messages);
    expect(skipped.attempts[0]).toEqual({
      target: 'anthropic:claude-sonnet-4',
      errorClass: 'circuit_open',
      message: 'circuit open: target skipped',
      latencyMs: 0,
    });
    expect(sim.stats().byModel['claude-sonnet-4']).toBe(2);

    // Cooldown over and the provider recovered: the trial succeeds and closes the circuit.
    now += 10_000;
    sim.setBehaviour('claude-sonnet-4', { errorRate: 0 });
    expect(c.breakerStates()[0].state).toBe('half_open');
    const recovered = await c.complete([anthropic, openai], messages);
    expect(recovered.fallbackDepth).toBe(0);
    expect(c.breakerStates()[0]).toMatchObject({ state: 'closed', consecutiveFailures: 0, opens: 1 });
  });

  it('half-open: exactly one trial runs; concurrent calls skip the target; a failed trial reopens', async () => {
    let now = 0;
    const c = chain({ breaker: { failureThreshold: 1, cooldownMs: 1000, now: () => now } });
    fail('claude-sonnet-4', 'server_error');
    await c.complete([anthropic, openai], messages);
    expect(c.breakerStates()[0].state).toBe('open');

    now = 1000;
    sim.setBehaviour('claude-sonnet-4', {
      errorRate: 1,
      errorKinds: { server_error: 1 },
      latencyMs: { median: 150, p99: 150 },
    });
    const before = sim.stats().byModel['claude-sonnet-4'];
    const results = await Promise.all(
      Array.from({ length: 5 }, () => c.complete([anthropic, openai], messages)),
    );
    expect(sim.stats().byModel['claude-sonnet-4'] - before).toBe(1);
    const classes = results.map((r) => r.attempts[0].errorClass).sort();
    expect(classes).toEqual(['circuit_open', 'circuit_open', 'circuit_open', 'circuit_open', 'server_error']);
    expect(c.breakerStates()[0]).toMatchObject({ state: 'open', openedAt: 1000, opens: 2 });
  });

  it('streams respect the breaker too', async () => {
    let now = 0;
    const c = chain({ breaker: { failureThreshold: 1, cooldownMs: 1000, now: () => now } });
    fail('claude-sonnet-4', 'overloaded');
    await collect(c.stream([anthropic, openai], messages));
    const events = await collect(c.stream([anthropic, openai], messages));
    const last = events.at(-1)!;
    expect(last.type === 'done' && last.result.attempts[0].errorClass).toBe('circuit_open');
    now = 5000;
    sim.reset();
    const healed = await collect(c.stream([anthropic, openai], messages));
    expect(healed.at(-1)).toMatchObject({ type: 'done', result: { fallbackDepth: 0 } });
    expect(c.breakerStates()[0].state).toBe('closed');
  });
});

describe('cancellation', () => {
  it('the caller aborting stops the chain with "cancelled" instead of falling back', async () => {
    fail('claude-sonnet-4', 'timeout');
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const error = await rejection(
      chain({ perAttemptTimeoutMs: 5000 }).complete(CHAIN, messages, { signal: controller.signal }),
    );
    expect(error.errorClass).toBe('cancelled');
    expect(error.attempts).toHaveLength(1);
    expect(sim.stats().byModel['gpt-4o']).toBeUndefined();
  });

  it('a consumer that stops reading a stream aborts the upstream request and frees the breaker trial', async () => {
    let now = 0;
    const c = chain({ breaker: { failureThreshold: 1, cooldownMs: 10, now: () => now } });
    fail('claude-sonnet-4', 'server_error');
    await c.complete([anthropic, openai], messages);
    now = 100;
    sim.setBehaviour('claude-sonnet-4', { errorRate: 0, streamChunkDelayMs: 20, outputTokens: 200 });
    for await (const event of c.stream([anthropic, openai], messages)) {
      expect(event.type).toBe('delta');
      break;
    }
    // The trial permit was handed back: the next call may try again.
    expect(c.breakerStates()[0]).toMatchObject({ state: 'half_open', trialInFlight: false });
  });
});
