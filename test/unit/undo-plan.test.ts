import { describe, expect, it } from 'vitest';
import { DEFAULT_UNDO_WINDOW_MS, formatAge, planUndo } from '../../src/decision/undo';
import type { RouteState, RoutingChange, SlotConfig } from '../../src/store/routing-state';

const slot = (provider: string, model: string): SlotConfig => ({
  target: { provider, model },
  fallbacks: [],
});
const CLAUDE = slot('anthropic', 'claude-sonnet-4');
const GPT = slot('openai', 'gpt-4o');
const MINI = slot('openai', 'gpt-4o-mini');
const NOW = Date.parse('2026-12-08T12:00:00Z');

function state(over: Partial<RouteState>): RouteState {
  return {
    name: 'support-bot',
    blue: CLAUDE,
    green: GPT,
    stableSlot: 'green',
    canaryBps: 0,
    shadowRate: 0,
    salt: 's',
    version: 10,
    owner: null,
    updatedAt: new Date(NOW),
    ...over,
  };
}
let id = 0;
function change(
  before: RouteState | null,
  after: RouteState,
  agoMs: number,
  actor = 'rollout-support-bot',
): RoutingChange {
  id += 1;
  return {
    id,
    route: 'support-bot',
    version: after.version,
    actor,
    reason: 'r',
    before,
    after,
    idempotencyKey: null,
    createdAt: new Date(NOW - agoMs),
  };
}

// The audit log of a rollout that promoted GPT an hour ago: claim, shares, the flip, the release (newest first).
const claimed = state({ stableSlot: 'blue', version: 7, owner: 'rollout-support-bot', canaryBps: 500 });
const flipped = state({ stableSlot: 'green', version: 8, owner: 'rollout-support-bot' });
const released = state({ version: 9 });
const log = [
  change(flipped, released, 3_500_000),
  change(claimed, flipped, 3_600_000),
  change(state({ stableSlot: 'blue', version: 6, green: null }), claimed, 4_000_000),
];
const req = { windowMs: DEFAULT_UNDO_WINDOW_MS, force: false };

describe('planUndo', () => {
  it('returns to the slot that was stable before the last flip, naming the change it undoes', () => {
    const d = planUndo(released, log, NOW, req);
    expect(d).toEqual({
      ok: true,
      plan: {
        toSlot: 'blue',
        to: CLAUDE,
        overwritten: null,
        from: 'openai:gpt-4o',
        undoes: { id: log[1].id, version: 8, actor: 'rollout-support-bot', at: '2026-12-08T11:00:00.000Z' },
      },
    });
  });

  it('refuses while a rollout owns the route', () => {
    expect(planUndo(state({ owner: 'rollout-x' }), log, NOW, req)).toEqual({
      ok: false,
      reason: 'rollout rollout-x owns route "support-bot"; roll it back instead of undoing',
    });
  });

  it('refuses a route that never changed its stable slot', () => {
    const d = planUndo(released, [log[2]], NOW, req);
    expect(d).toMatchObject({
      ok: false,
      reason: 'route "support-bot" has no promotion to undo in its audit log',
    });
    expect(planUndo(released, [], NOW, req).ok).toBe(false);
  });

  it('refuses past the window unless forced', () => {
    const d = planUndo(released, log, NOW, { windowMs: 30 * 60_000, force: false });
    expect(d).toMatchObject({ ok: false });
    expect(!d.ok && d.reason).toBe(
      'the promotion to openai:gpt-4o (change 8 by rollout-support-bot, 2026-12-08T11:00:00.000Z) is 1h old, past the 30m undo window; --force undoes it anyway',
    );
    expect(planUndo(released, log, NOW, { windowMs: 30 * 60_000, force: true }).ok).toBe(true);
    // At the edge: exactly the window's age is still inside it.
    expect(planUndo(released, log, NOW, { windowMs: 3_600_000, force: false }).ok).toBe(true);
  });

  it('refuses when the other slot was overwritten since; forced, it brings the old config back', () => {
    const now = state({ blue: MINI, version: 12 });
    const d = planUndo(now, log, NOW, req);
    expect(!d.ok && d.reason).toBe(
      'the blue slot no longer holds anthropic:claude-sonnet-4 (it holds openai:gpt-4o-mini since a later change); --force puts anthropic:claude-sonnet-4 back into it and serves it',
    );
    const forced = planUndo(now, log, NOW, { ...req, force: true });
    expect(forced).toMatchObject({ ok: true, plan: { toSlot: 'blue', to: CLAUDE, overwritten: MINI } });
  });

  it('a fallback added to the other slot counts as overwritten', () => {
    const now = state({ blue: { ...CLAUDE, fallbacks: [{ provider: 'openai', model: 'gpt-4o' }] } });
    expect(planUndo(now, log, NOW, req).ok).toBe(false);
  });

  it('an undo, a rollback or a guardian switch is not a promotion: afterwards there is nothing to undo', () => {
    const undone = state({ stableSlot: 'blue', version: 10 });
    const withUndo = [
      { ...change(released, undone, 60_000, 'cli:alice'), reason: 'undo of change 8' },
      ...log,
    ];
    expect(planUndo(undone, withUndo, NOW, req)).toEqual({
      ok: false,
      reason:
        'anthropic:claude-sonnet-4 serves again since change 10 (cli:alice: undo of change 8); nothing to undo',
    });
    // A rollback during the bake flips back and releases the route in one change.
    const rolledBack = state({ stableSlot: 'blue', version: 9 });
    const bakeRollback = [change(flipped, rolledBack, 1000), log[1], log[2]];
    expect(planUndo(rolledBack, bakeRollback, NOW, req)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(
        /^anthropic:claude-sonnet-4 serves again since change 9 \(rollout-support-bot: r\)/,
      ),
    });
    // A route that only ever saw rollbacks and switches has no promotion at all.
    expect(planUndo(rolledBack, [bakeRollback[0]], NOW, req)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('no promotion'),
    });
  });

  it('names fallbacks and other parameters when the same model holds the slot', () => {
    const withFallback = { ...CLAUDE, fallbacks: [{ provider: 'openai', model: 'gpt-4o-mini' }] };
    const promotedFrom = state({
      stableSlot: 'blue',
      blue: withFallback,
      owner: 'rollout-support-bot',
      version: 7,
    });
    const p = [change(promotedFrom, { ...flipped, blue: withFallback }, 1000)];
    expect(planUndo(state({ blue: CLAUDE }), p, NOW, req)).toMatchObject({
      ok: false,
      reason: expect.stringContaining(
        'the blue slot no longer holds anthropic:claude-sonnet-4 (fallbacks openai:gpt-4o-mini) (it holds anthropic:claude-sonnet-4 since',
      ),
    });
    const sameModel = { ...CLAUDE, target: { ...CLAUDE.target, params: { temperature: 0 } } } as SlotConfig;
    expect(planUndo(state({ blue: sameModel }), log, NOW, req)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('(it holds anthropic:claude-sonnet-4 with other parameters since'),
    });
  });

  it('formats ages in the largest whole unit', () => {
    expect([0, 999, 1000, 61_000, 3_600_000, 8 * 86_400_000].map(formatAge)).toEqual([
      '0ms',
      '999ms',
      '1s',
      '1m',
      '1h',
      '8d',
    ]);
  });
});
