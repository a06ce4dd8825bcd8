import { describe, expect, it } from 'vitest';
import { capturePolicy, hashText, parseRouteModes, redactText } from '../../src/data-plane/router/capture';
import type { RouteState } from '../../src/store/routing-state';

const state = (patch: Partial<RouteState>): RouteState => ({
  name: 'r',
  blue: { target: { provider: 'openai', model: 'gpt-4o' }, fallbacks: [] },
  green: null,
  stableSlot: 'blue',
  canaryBps: 0,
  shadowRate: 0,
  salt: '',
  version: 1,
  owner: null,
  updatedAt: new Date(0),
  ...patch,
});

describe('capture policy', () => {
  it('by default captures a route only while it is under rollout (owned, canary or shadow)', () => {
    const p = capturePolicy(undefined);
    expect(p.captures('r', state({}))).toBe(false);
    expect(p.captures('r', undefined)).toBe(false);
    expect(p.captures('r', state({ owner: 'rollout-r' }))).toBe(true);
    expect(p.captures('r', state({ canaryBps: 500 }))).toBe(true);
    expect(p.captures('r', state({ shadowRate: 0.1 }))).toBe(true);
  });

  it('keeps the legacy switch, and per-route modes override the default', () => {
    expect(capturePolicy({ enabled: true }).captures('r', state({}))).toBe(true);
    expect(capturePolicy({ enabled: false }).captures('r', state({ owner: 'x' }))).toBe(false);
    const p = capturePolicy({ mode: 'off', routes: { vip: 'all', r: 'rollouts' } });
    expect(p.captures('vip', undefined)).toBe(true);
    expect(p.captures('r', state({ canaryBps: 1 }))).toBe(true);
    expect(p.captures('other', state({ canaryBps: 1 }))).toBe(false);
  });

  it('stores prompts as sent, redacted or hashed', () => {
    const messages = [
      { role: 'user' as const, content: 'I am bob@corp.io, card 4111 1111 1111 1111, ring 030-1234567' },
    ];
    expect(capturePolicy({ prompts: 'full' }).prompt(messages)).toBe(messages);
    expect(capturePolicy({ prompts: 'redact' }).prompt(messages)).toEqual([
      { role: 'user', content: 'I am [email], card [number], ring [number]' },
    ]);
    expect(capturePolicy({ prompts: 'hash' }).prompt(messages)).toEqual([
      { role: 'user', content: hashText(messages[0].content) },
    ]);
    expect(hashText('a')).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(redactText('Order 12 of 3 items')).toBe('Order 12 of 3 items');
  });

  it('parses route=mode pairs, naming a bad one', () => {
    expect(parseRouteModes(['a=off', 'b=all'])).toEqual({ a: 'off', b: 'all' });
    expect(() => parseRouteModes(['a=sometimes'])).toThrow(
      'expected ROUTE=off|rollouts|all, got "a=sometimes"',
    );
  });
});
