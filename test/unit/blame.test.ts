import { describe, expect, it } from 'vitest';
import {
  CLIENT_TIMEOUT_TOKENS_PER_SECOND,
  isClientCaused,
  recordedErrorClass,
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
  it('every class: only bad requests, content policy and hang-ups are the client’s without context', () => {
    const client = ALL.filter((c) => isClientCaused(c));
    expect(client.sort()).toEqual(['bad_request', 'cancelled', 'content_policy']);
    for (const c of ALL) expect(recordedErrorClass(c)).toBe(client.includes(c) ? `client_${c}` : c);
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
