import { describe, expect, it } from 'vitest';
import {
  CLIENT_TIMEOUT_TOKENS_PER_SECOND,
  isClientCaused,
  isModelAttemptFailure,
  recordedErrorClass,
  refusalKind,
  requestedMaxTokens,
} from '../../src/data-plane/providers/blame';
import type { ErrorClass } from '../../src/data-plane/providers/types';

const ALL: ErrorClass[] = [
  'rate_limited',
  'overloaded',
  'server_error',
  'timeout',
  'connection',
  'malformed_response',
  'bad_request',
  'auth',
  'permission',
  'not_found',
  'content_policy',
  'quality_check',
  'circuit_open',
  'cancelled',
  'context_length',
];

describe('whose fault a failure is', () => {
  it('every class: refusals are recorded to be compared per arm, hang-ups as the client’s, the rest as the model’s', () => {
    const client = ALL.filter((c) => isClientCaused(c));
    // The breaker's rule: none of these says whether the provider is up.
    expect(client.sort()).toEqual(['bad_request', 'cancelled', 'content_policy']);
    const recorded = Object.fromEntries(ALL.map((c) => [c, recordedErrorClass(c)]));
    expect(recorded).toMatchObject({
      bad_request: 'refused_bad_request',
      content_policy: 'refused_content_policy',
      cancelled: 'client_cancelled',
    });
    for (const c of ALL.filter((c) => !client.includes(c))) expect(recorded[c]).toBe(c);
  });

  it('a refusal’s kind comes from the provider’s message: unsupported parameters, untranslatable fields', () => {
    expect(refusalKind('bad_request', 'Invalid request (simulated).')).toBe('bad_request');
    expect(
      refusalKind('bad_request', "Unsupported parameter: 'temperature' is not supported with this model."),
    ).toBe('unsupported_parameter');
    expect(refusalKind('bad_request', 'unsupported_value: reasoning_effort')).toBe('unsupported_parameter');
    expect(
      refusalKind(
        'bad_request',
        'seed: has no Anthropic equivalent (the request cannot be translated for Anthropic)',
      ),
    ).toBe('untranslatable');
    expect(refusalKind('content_policy', 'flagged')).toBe('content_policy');
    expect(refusalKind('server_error', 'Unsupported parameter')).toBeUndefined();
    expect(recordedErrorClass('bad_request', {}, 'Unsupported parameter: temperature')).toBe(
      'refused_unsupported_parameter',
    );
  });

  it('a failed attempt counts against the model unless it was a refusal, a hang-up or a skip', () => {
    const model = ALL.filter((c) => isModelAttemptFailure(c));
    expect(model.sort()).toEqual(
      ALL.filter((c) => !['bad_request', 'content_policy', 'cancelled', 'circuit_open'].includes(c)).sort(),
    );
    expect(isModelAttemptFailure(undefined)).toBe(false);
  });

  it('a JSON timeout is the client’s only when its max_tokens cannot be written within the timeout', () => {
    const timeoutMs = 30_000;
    const limit = (timeoutMs / 1000) * CLIENT_TIMEOUT_TOKENS_PER_SECOND; // 6 000 tokens
    expect(isClientCaused('timeout', { timeoutMs, maxTokens: limit })).toBe(false);
    expect(limit).toBe(6000);
    expect(isClientCaused('timeout', { timeoutMs, maxTokens: limit + 1 })).toBe(true);
    // An ordinary max_tokens keeps a hung model's timeouts counted.
    expect(isClientCaused('timeout', { timeoutMs, maxTokens: 4096 })).toBe(false);
    expect(recordedErrorClass('timeout', { timeoutMs, maxTokens: 100_000 })).toBe('client_timeout');
    expect(isClientCaused('timeout', { timeoutMs })).toBe(false);
    expect(isClientCaused('timeout', { maxTokens: 100_000 })).toBe(false);
    // A stream's timeout bounds a silence, which no max_tokens explains.
    expect(isClientCaused('timeout', { timeoutMs, maxTokens: 100_000, stream: true })).toBe(false);
    // Other classes ignore max_tokens.
    expect(isClientCaused('server_error', { timeoutMs, maxTokens: 100_000 })).toBe(false);
  });

  it('max_tokens from the caller’s body (max_completion_tokens first), else the target’s params', () => {
    const target = { provider: 'openai', model: 'm', params: { maxTokens: 256 } };
    const body = (extra: object) => ({ request: { body: { model: 'r', messages: [], ...extra } } });
    expect(requestedMaxTokens(body({ max_tokens: 900 }), target)).toBe(900);
    expect(requestedMaxTokens(body({ max_tokens: 900, max_completion_tokens: 50 }), target)).toBe(50);
    expect(requestedMaxTokens(body({ max_tokens: 'lots' }), target)).toBe(256);
    expect(requestedMaxTokens(undefined, target)).toBe(256);
    expect(requestedMaxTokens(undefined)).toBeUndefined();
  });
});
