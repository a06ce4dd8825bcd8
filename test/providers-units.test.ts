import { describe, expect, it } from 'vitest';
import { classifyHttpError, httpErrorMessage, parseRetryAfter } from '../src/data-plane/providers/errors';
import { upstreamChatBody } from '../src/data-plane/providers/openai-wire';
import {
  ChainExhaustedError,
  CircuitBreaker,
  createPricing,
  defaultQualityCheck,
  extractJsonText,
  Permit,
  ProviderError,
  type CompletionResult,
} from '../src/data-plane/providers';

/** Pure parts of the provider layer: pricing, classification, quality check, breaker state machine. */

describe('pricing', () => {
  const pricing = createPricing({
    'my-model': { inputPerMTok: 1, outputPerMTok: 2 },
    'gpt-4o': { inputPerMTok: 2, outputPerMTok: 8 },
  });
  it.each([
    ['claude-sonnet-4', 3, 15],
    ['claude-sonnet-4-20250514', 3, 15],
    ['claude-opus-4', 15, 75],
    ['claude-haiku', 0.8, 4],
    ['gpt-4o-mini', 0.15, 0.6],
    ['gpt-4o-mini-2024-07-18', 0.15, 0.6],
    ['gemini-2.5-pro', 1.25, 10],
    ['gemini-2.5-flash', 0.3, 2.5],
    ['deepseek-chat', 0.27, 1.1],
    ['anthropic/claude-sonnet-4', 3, 15],
    ['my-model', 1, 2],
  ])('%s costs %d / %d per MTok', (model, input, output) => {
    expect(pricing.cost(model, { inputTokens: 1_000_000, outputTokens: 1_000_000 })).toEqual({
      costUsd: input + output,
      known: true,
    });
  });
  it('config overrides defaults', () => {
    expect(pricing.priceOf('gpt-4o')).toEqual({ inputPerMTok: 2, outputPerMTok: 8 });
    expect(createPricing().priceOf('gpt-4o')).toEqual({ inputPerMTok: 2.5, outputPerMTok: 10 });
  });
  it('an unknown model costs 0, flagged unknown', () => {
    expect(pricing.cost('meta-llama/llama-3-70b', { inputTokens: 10, outputTokens: 10 })).toEqual({
      costUsd: 0,
      known: false,
    });
    expect(pricing.cost('gpt-4', { inputTokens: 10, outputTokens: 10 }).known).toBe(false);
  });
});

describe('error classification', () => {
  it.each([
    [429, undefined, 'rate_limited'],
    [529, undefined, 'overloaded'],
    [503, undefined, 'overloaded'],
    [500, undefined, 'server_error'],
    [502, undefined, 'server_error'],
    [504, undefined, 'timeout'],
    [400, { error: { message: 'bad' } }, 'bad_request'],
    [400, { error: { code: 'content_filter', message: 'x' } }, 'content_policy'],
    [400, { error: { code: 'content_policy_violation', message: 'x' } }, 'content_policy'],
    [
      400,
      { error: { message: 'Your request was rejected as a result of our safety system' } },
      'content_policy',
    ],
    [401, undefined, 'auth'],
    [403, undefined, 'permission'],
    [404, undefined, 'not_found'],
    [500, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, 'overloaded'],
    [undefined, { type: 'error', error: { type: 'overloaded_error' } }, 'overloaded'],
    [undefined, { error: { code: 'rate_limit_exceeded' } }, 'rate_limited'],
    [undefined, { error: { message: 'boom' } }, 'server_error'],
  ] as const)('%s %j → %s', (status, body, errorClass) => {
    expect(classifyHttpError(status, body)).toBe(errorClass);
  });

  it('formats messages as the SDKs do', () => {
    expect(httpErrorMessage(429, { message: 'slow down' })).toBe('429 slow down');
    expect(httpErrorMessage(500, undefined)).toBe('500 status code (no body)');
    expect(httpErrorMessage(502, undefined, '<html>bad gateway</html>')).toBe('502 <html>bad gateway</html>');
    expect(httpErrorMessage(400, { code: 'x' })).toBe('400 {"code":"x"}');
  });

  it('parses retry-after in seconds, ms and HTTP dates', () => {
    expect(parseRetryAfter((n) => ({ 'retry-after': '3' })[n])).toBe(3000);
    expect(parseRetryAfter((n) => ({ 'retry-after-ms': '250', 'retry-after': '3' })[n])).toBe(250);
    const date = new Date(Date.now() + 5000).toUTCString();
    expect(parseRetryAfter((n) => ({ 'retry-after': date })[n])).toBeGreaterThan(3000);
    expect(parseRetryAfter(() => undefined)).toBeUndefined();
  });

  it('retryable follows the class; ChainExhaustedError summarizes its attempts', () => {
    expect(new ProviderError({ errorClass: 'overloaded', target: 't', message: 'm' }).retryable).toBe(true);
    expect(new ProviderError({ errorClass: 'content_policy', target: 't', message: 'm' }).retryable).toBe(
      false,
    );
    const error = new ChainExhaustedError([
      { target: 'a:1', errorClass: 'timeout', message: 'timed out', latencyMs: 200 },
      { target: 'b:2', errorClass: 'circuit_open', message: 'circuit open', latencyMs: 0 },
      { target: 'c:3', errorClass: 'auth', message: '401 no', latencyMs: 3.4, status: 401 },
    ]);
    expect(error.errorClass).toBe('auth');
    expect(error.retryable).toBe(true);
    expect(error.target).toBe('a:1 -> b:2 -> c:3');
    expect(error.message).toContain('a:1 timeout "timed out" after 200 ms');
    expect(error.message).toContain('c:3 auth 401 "401 no" after 3 ms');
  });
});

describe('default quality check', () => {
  const result = (text: string, over: Partial<CompletionResult> = {}): CompletionResult => ({
    target: { provider: 'openai', model: 'gpt-4o' },
    text,
    finishReason: 'stop',
    usage: { inputTokens: 1, outputTokens: 1 },
    latencyMs: 1,
    costUsd: 0,
    ...over,
  });
  it('rejects empty and whitespace answers', () => {
    expect(defaultQualityCheck(result(''), { messages: [] })).toEqual({ ok: false, reason: 'empty answer' });
    expect(defaultQualityCheck(result(' \n '), { messages: [] }).ok).toBe(false);
    expect(defaultQualityCheck(result('hi'), { messages: [] })).toEqual({ ok: true });
  });
  it('rejects truncation only when allowTruncation is false', () => {
    const cut = result('partial', { finishReason: 'length' });
    expect(defaultQualityCheck(cut, { messages: [] }).ok).toBe(true);
    expect(defaultQualityCheck(cut, { messages: [], options: { allowTruncation: false } }).ok).toBe(false);
  });
  it('requires valid JSON when the target asks for JSON', () => {
    const target = { provider: 'openai', model: 'gpt-4o', params: { json: true } };
    expect(defaultQualityCheck(result('{"a":1}', { target }), { messages: [] }).ok).toBe(true);
    const bad = defaultQualityCheck(result('{"a":', { target }), { messages: [] });
    expect(bad.ok).toBe(false);
  });
  it('Anthropic JSON answers are unwrapped from fences and prose without prefill', () => {
    expect(extractJsonText('```json\n{"a": 1}\n```')).toBe('{"a": 1}');
    expect(extractJsonText('Here you go: {"a": {"b": 2}} Hope it helps')).toBe('{"a": {"b": 2}}');
    expect(extractJsonText('{"a": 1}')).toBe('{"a": 1}');
    expect(extractJsonText('no json {here')).toBe('no json {here');
  });
});

describe('circuit breaker state machine', () => {
  it('closed → open after N consecutive failures; a success in between resets the count', () => {
    let now = 0;
    const breaker = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 100, now: () => now });
    for (let i = 0; i < 2; i++) breaker.onFailure('t', breaker.acquire('t'));
    breaker.onSuccess('t', breaker.acquire('t'));
    for (let i = 0; i < 2; i++) breaker.onFailure('t', breaker.acquire('t'));
    expect(breaker.snapshot('t').state).toBe('closed');
    breaker.onFailure('t', breaker.acquire('t'));
    expect(breaker.snapshot('t')).toEqual({
      target: 't',
      state: 'open',
      consecutiveFailures: 3,
      openedAt: 0,
      trialInFlight: false,
      opens: 1,
    });
    expect(breaker.acquire('t')).toBe(Permit.Denied);
    now = 99;
    expect(breaker.acquire('t')).toBe(Permit.Denied);
  });

  it('half-open grants exactly one trial; its verdict closes or reopens; release hands it back', () => {
    let now = 0;
    const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 100, now: () => now });
    breaker.onFailure('t', breaker.acquire('t'));
    now = 100;
    const trial = breaker.acquire('t');
    expect(trial).toBe(Permit.Trial);
    expect(breaker.acquire('t')).toBe(Permit.Denied);
    breaker.release('t', trial);
    const second = breaker.acquire('t');
    expect(second).toBe(Permit.Trial);
    breaker.onFailure('t', second);
    expect(breaker.snapshot('t')).toMatchObject({ state: 'open', openedAt: 100, opens: 2 });
    now = 200;
    const third = breaker.acquire('t');
    breaker.onSuccess('t', third);
    expect(breaker.snapshot('t')).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
    expect(breaker.snapshot('t').openedAt).toBeUndefined();
  });

  it('a late success of a call started before the circuit opened does not close it', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 1000, now: () => 0 });
    const early = breaker.acquire('t');
    breaker.onFailure('t', breaker.acquire('t'));
    breaker.onSuccess('t', early);
    expect(breaker.snapshot('t').state).toBe('open');
  });

  it('defaults: 5 failures, 30 s cooldown; targets are independent', () => {
    let now = 0;
    const breaker = new CircuitBreaker({ now: () => now });
    for (let i = 0; i < 5; i++) breaker.onFailure('a', breaker.acquire('a'));
    expect(breaker.acquire('a')).toBe(Permit.Denied);
    expect(breaker.acquire('b')).toBe(Permit.Normal);
    now = 29_999;
    expect(breaker.acquire('a')).toBe(Permit.Denied);
    now = 30_000;
    expect(breaker.acquire('a')).toBe(Permit.Trial);
    expect(breaker.snapshots().map((s) => s.target)).toEqual(['a', 'b']);
  });
});

describe('upstreamChatBody: the caller body as written, model replaced', () => {
  const target = { provider: 'openai', model: 'gpt-4o-mini', params: { temperature: 0.1, maxTokens: 50 } };
  const body = {
    model: 'support-bot',
    messages: [{ role: 'user', content: 'hi "there"' }],
    tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
    temperature: 0.7,
    seed: 3,
  };

  it('splices the model out of the bytes when it comes first, keeping every other byte', () => {
    const raw = JSON.stringify(body);
    const out = upstreamChatBody(target, { body, raw }, false);
    expect(out.endsWith(raw.slice(raw.indexOf('"messages"')))).toBe(true);
    // The caller's temperature wins; the target's max_tokens fills the gap.
    expect(JSON.parse(out)).toEqual({ ...body, model: 'gpt-4o-mini', max_tokens: 50 });
  });

  it('re-serializes when the model is not first, with the same result', () => {
    const { model, ...rest } = body;
    const raw = JSON.stringify({ ...rest, model });
    expect(JSON.parse(upstreamChatBody(target, { body, raw }, false))).toEqual({
      ...body,
      model: 'gpt-4o-mini',
      max_tokens: 50,
    });
  });

  it('streams always ask for usage, without touching what the caller set', () => {
    const streamBody = { ...body, stream: true };
    const spliced = JSON.parse(
      upstreamChatBody(target, { body: streamBody, raw: JSON.stringify(streamBody) }, true),
    );
    expect(spliced.stream_options).toEqual({ include_usage: true });
    const withOptions = { ...streamBody, stream_options: { include_usage: false } };
    const rebuilt = JSON.parse(
      upstreamChatBody(target, { body: withOptions, raw: JSON.stringify(withOptions) }, true),
    );
    expect(rebuilt.stream_options).toEqual({ include_usage: true });
    expect(rebuilt.seed).toBe(3);
  });

  it('handles a body that is only a model and messages, and odd spacing', () => {
    const tiny = { model: 'r', messages: [] as unknown[] };
    expect(
      JSON.parse(
        upstreamChatBody(
          { provider: 'openai', model: 'm' },
          { body: tiny, raw: ' { "model" : "r" , "messages":[]}' },
          false,
        ),
      ),
    ).toEqual({ model: 'm', messages: [] });
    const escaped = { model: 'a"b', messages: [] as unknown[] };
    expect(
      JSON.parse(
        upstreamChatBody(
          { provider: 'openai', model: 'm' },
          { body: escaped, raw: JSON.stringify(escaped) },
          false,
        ),
      ),
    ).toEqual({ model: 'm', messages: [] });
  });
});

describe('context window exceeded', () => {
  it('is its own class in both dialects, apart from other bad requests', () => {
    expect(
      classifyHttpError(400, {
        error: { type: 'invalid_request_error', code: 'context_length_exceeded', message: 'too long' },
      }),
    ).toBe('context_length');
    expect(
      classifyHttpError(400, {
        type: 'error',
        error: {
          type: 'invalid_request_error',
          message: 'prompt is too long: 250000 tokens > 200000 maximum',
        },
      }),
    ).toBe('context_length');
    expect(classifyHttpError(400, { error: { type: 'invalid_request_error', message: 'bad tools' } })).toBe(
      'bad_request',
    );
  });
});
