import { describe, expect, it } from 'vitest';
import {
  chainOf,
  formatTarget,
  parseTarget,
  parseTargetWithFallbacks,
  TargetValidationError,
} from '../../src/decision/config/target';

function issues(run: () => unknown): { field: string; reason: string }[] {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(TargetValidationError);
    return (error as TargetValidationError).issues;
  }
  throw new Error('expected a validation error');
}

describe('target parsing', () => {
  it.each([
    ['anthropic:claude-sonnet-4', 'anthropic', 'claude-sonnet-4'],
    ['openai:gpt-4o', 'openai', 'gpt-4o'],
    ['google:gemini-2.5-pro', 'google', 'gemini-2.5-pro'],
    ['deepseek:deepseek-chat', 'deepseek', 'deepseek-chat'],
    ['openrouter:meta-llama/llama-3-70b', 'openrouter', 'meta-llama/llama-3-70b'],
    ['openrouter:meta-llama/llama-3-70b:free', 'openrouter', 'meta-llama/llama-3-70b:free'],
    ['  vllm:Qwen/Qwen2.5-7B-Instruct  ', 'vllm', 'Qwen/Qwen2.5-7B-Instruct'],
  ])('%s splits on the first colon', (text, provider, model) => {
    const target = parseTarget(text);
    expect(target).toEqual({ provider, model });
    expect(formatTarget(target)).toBe(`${provider}:${model}`);
  });

  it('accepts the object form with params and baseUrl', () => {
    const target = parseTarget({
      provider: 'openai',
      model: 'gpt-4o',
      params: { temperature: 0.2, maxTokens: 512, json: true },
      baseUrl: 'http://localhost:8000/v1',
    });
    expect(target).toEqual({
      provider: 'openai',
      model: 'gpt-4o',
      params: { temperature: 0.2, maxTokens: 512, json: true },
      baseUrl: 'http://localhost:8000/v1',
    });
    expect(formatTarget(target)).toBe('openai:gpt-4o');
  });

  it('names the field and the reason in errors', () => {
    expect(issues(() => parseTarget('gpt-4o'))).toEqual([
      { field: '(root)', reason: 'expected "provider:model" (e.g. "openai:gpt-4o"), got "gpt-4o"' },
    ]);
    expect(issues(() => parseTarget(':gpt-4o'))).toEqual([
      { field: 'provider', reason: 'provider is required' },
    ]);
    expect(issues(() => parseTarget('openai:'))).toEqual([{ field: 'model', reason: 'model is required' }]);
    expect(issues(() => parseTarget({ provider: 'openai' }))).toEqual([
      { field: 'model', reason: 'model is required' },
    ]);
    expect(issues(() => parseTarget({ provider: 'OpenAI', model: 'x' }))[0].field).toBe('provider');
    expect(
      issues(() => parseTarget({ provider: 'openai', model: 'x', params: { temperature: 5 } }))[0].field,
    ).toBe('params.temperature');
    expect(
      issues(() => parseTarget({ provider: 'openai', model: 'x', params: { maxTokens: 1.5 } }))[0].field,
    ).toBe('params.maxTokens');
    expect(issues(() => parseTarget({ provider: 'openai', model: 'x', baseUrl: 'ftp://x' }))).toEqual([
      { field: 'baseUrl', reason: 'baseUrl must be an http(s) URL' },
    ]);
    expect(issues(() => parseTarget({ provider: 'openai', model: 'x', temperature: 1 }))).toEqual([
      { field: 'temperature', reason: 'unknown field' },
    ]);
    expect(issues(() => parseTarget(42))[0].reason).toMatch(/provider:model/);
  });

  it('error messages carry the source name', () => {
    expect(() => parseTarget('nope', 'routes.support-bot.blue')).toThrow(
      /^routes\.support-bot\.blue: \(root\): expected/,
    );
  });
});

describe('target with fallbacks', () => {
  it('accepts strings and objects in both places; fallbacks default to none', () => {
    const config = parseTargetWithFallbacks({
      target: 'anthropic:claude-sonnet-4',
      fallbacks: ['openai:gpt-4o', { provider: 'google', model: 'gemini-2.5-pro', params: { json: true } }],
    });
    expect(chainOf(config).map(formatTarget)).toEqual([
      'anthropic:claude-sonnet-4',
      'openai:gpt-4o',
      'google:gemini-2.5-pro',
    ]);
    expect(config.fallbacks[1].params).toEqual({ json: true });
    expect(parseTargetWithFallbacks({ target: { provider: 'openai', model: 'gpt-4o' } }).fallbacks).toEqual(
      [],
    );
  });

  it('points at the offending fallback', () => {
    expect(
      issues(() => parseTargetWithFallbacks({ target: 'openai:gpt-4o', fallbacks: ['ok:model', 'broken'] })),
    ).toEqual([
      { field: 'fallbacks[1]', reason: 'expected "provider:model" (e.g. "openai:gpt-4o"), got "broken"' },
    ]);
    expect(
      issues(() => parseTargetWithFallbacks({ target: 'openai:gpt-4o', fallbacks: [{ provider: 'x' }] })),
    ).toEqual([{ field: 'fallbacks[0].model', reason: 'model is required' }]);
    expect(issues(() => parseTargetWithFallbacks({ fallbacks: [] }))[0].field).toBe('target');
  });
});
