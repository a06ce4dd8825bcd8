import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import {
  RouteExistsError,
  RouteNotFoundError,
  RoutingConflictError,
  RoutingValidationError,
  candidateOf,
  changeRoute,
  createRoute,
  getRoute,
  listChanges,
  listRoutes,
  stableOf,
  type SlotConfig,
} from '../src/store/routing-state';
import { createTestDatabase, type TestDatabase } from './helpers/db';

const SONNET: SlotConfig = {
  target: { provider: 'anthropic', model: 'claude-sonnet-4' },
  fallbacks: [{ provider: 'openai', model: 'gpt-4o-mini' }],
};
const GPT4O: SlotConfig = {
  target: { provider: 'openai', model: 'gpt-4o', params: { temperature: 0 } },
  fallbacks: [],
};
const CTX = { actor: 'test', reason: 'test setup' };

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.close();
});

describe('routing state', () => {
  it('creates a route at version 1, reads it back, refuses a duplicate', async () => {
    const created = await createRoute(db.pool, { name: 'support-bot', blue: SONNET }, CTX);
    expect(created).toMatchObject({
      name: 'support-bot',
      blue: SONNET,
      green: null,
      stableSlot: 'blue',
      canaryBps: 0,
      shadowRate: 0,
      version: 1,
      owner: null,
    });
    expect(created.salt).toMatch(/^[0-9a-f]{16}$/);
    expect(created.updatedAt).toBeInstanceOf(Date);
    expect(await getRoute(db.pool, 'support-bot')).toEqual(created);
    expect(stableOf(created)).toEqual(SONNET);
    expect(candidateOf(created)).toBeNull();

    await expect(createRoute(db.pool, { name: 'support-bot', blue: GPT4O }, CTX)).rejects.toBeInstanceOf(
      RouteExistsError,
    );
    expect((await getRoute(db.pool, 'support-bot'))!.blue).toEqual(SONNET);
    expect(await getRoute(db.pool, 'nope')).toBeUndefined();
    expect((await listRoutes(db.pool)).map((r) => r.name)).toContain('support-bot');

    const changes = await listChanges(db.pool, 'support-bot', 10);
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ version: 1, actor: 'test', reason: 'test setup', before: null });
    expect(changes[0].after).toEqual(created);
  });

  it('validates values and names the field', async () => {
    await createRoute(db.pool, { name: 'validate', blue: SONNET }, CTX);
    const bad = async (patch: object) => {
      try {
        await changeRoute(db.pool, 'validate', { expectedVersion: 1, patch, ...CTX });
      } catch (err) {
        expect(err).toBeInstanceOf(RoutingValidationError);
        return (err as RoutingValidationError).field;
      }
      throw new Error('expected a validation error');
    };
    expect(await bad({ canaryBps: 100 })).toBe('green'); // no candidate yet
    expect(await bad({ stableSlot: 'green' })).toBe('green');
    expect(await bad({ shadowRate: 0.1 })).toBe('green');
    expect(await bad({ green: GPT4O, canaryBps: 10001 })).toBe('canaryBps');
    expect(await bad({ green: GPT4O, canaryBps: 12.5 })).toBe('canaryBps');
    expect(await bad({ green: GPT4O, canaryBps: -1 })).toBe('canaryBps');
    expect(await bad({ green: GPT4O, shadowRate: 1.5 })).toBe('shadowRate');
    expect(await bad({ green: GPT4O, shadowRate: Number.NaN })).toBe('shadowRate');
    expect(await bad({ stableSlot: 'purple' })).toBe('stableSlot');
    expect(await bad({ green: { target: { provider: 'openai' }, fallbacks: [] } })).toBe(
      'green.target.model',
    );
    expect(await bad({ blue: { target: { provider: 'x', model: 'y' }, fallbacks: [{ model: 'z' }] } })).toBe(
      'blue.fallbacks[0].provider',
    );
    expect(await bad({ colour: 'red' })).toBe('colour');
    await expect(
      changeRoute(db.pool, 'validate', { expectedVersion: 1, patch: {}, actor: '', reason: 'r' }),
    ).rejects.toThrow(/invalid actor/);
    await expect(createRoute(db.pool, { name: 'has space', blue: SONNET }, CTX)).rejects.toThrow(
      /invalid name/,
    );
    // Nothing was written by any of these.
    expect((await getRoute(db.pool, 'validate'))!.version).toBe(1);
    await expect(
      changeRoute(db.pool, 'missing', { expectedVersion: 1, patch: {}, ...CTX }),
    ).rejects.toBeInstanceOf(RouteNotFoundError);
  });

  it('changes by compare-and-set: version + 1, audit row with before and after', async () => {
    const v1 = await createRoute(db.pool, { name: 'cas', blue: SONNET }, CTX);
    const v2 = await changeRoute(db.pool, 'cas', {
      expectedVersion: 1,
      patch: { green: GPT4O, canaryBps: 100, salt: 'rollout-1', owner: 'wf-1' },
      actor: 'wf-1',
      reason: 'canary 1%',
    });
    expect(v2).toMatchObject({
      version: 2,
      green: GPT4O,
      canaryBps: 100,
      salt: 'rollout-1',
      owner: 'wf-1',
      stableSlot: 'blue',
    });
    expect(candidateOf(v2)).toEqual(GPT4O);
    const [last] = await listChanges(db.pool, 'cas', 1);
    expect(last).toMatchObject({ version: 2, actor: 'wf-1', reason: 'canary 1%' });
    expect(last.before).toEqual(v1);
    expect(last.after).toEqual(v2);

    // Promotion: a pointer flip.
    const v3 = await changeRoute(db.pool, 'cas', {
      expectedVersion: 2,
      patch: { stableSlot: 'green', canaryBps: 0 },
      actor: 'wf-1',
      reason: 'promote',
    });
    expect(stableOf(v3)).toEqual(GPT4O);
    expect(candidateOf(v3)).toEqual(SONNET);
  });

  it('two concurrent writers with the same expected version: exactly one wins, the audit has only its change', async () => {
    await createRoute(db.pool, { name: 'race', blue: SONNET, green: GPT4O }, CTX);
    // Separate pools: really concurrent connections.
    const pools = [
      new pg.Pool({ connectionString: db.connectionString }),
      new pg.Pool({ connectionString: db.connectionString }),
    ];
    try {
      for (let round = 0; round < 10; round++) {
        const current = (await getRoute(db.pool, 'race'))!;
        const results = await Promise.allSettled(
          pools.map((p, i) =>
            changeRoute(p, 'race', {
              expectedVersion: current.version,
              patch: { canaryBps: 1000 * (i + 1) + round },
              actor: `writer-${i}`,
              reason: `round ${round}`,
            }),
          ),
        );
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        const err = lost[0].reason as RoutingConflictError;
        expect(err).toBeInstanceOf(RoutingConflictError);
        expect(err).toMatchObject({
          route: 'race',
          kind: 'version',
          expectedVersion: current.version,
          actualVersion: current.version + 1,
        });
        const winner = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof changeRoute>>>).value;
        const now = (await getRoute(db.pool, 'race'))!;
        expect(now).toEqual(winner);
        const changes = await listChanges(db.pool, 'race', 100);
        expect(changes.filter((c) => c.reason === `round ${round}`)).toHaveLength(1);
        expect(changes[0].after.canaryBps).toBe(winner.canaryBps);
      }
      expect(await listChanges(db.pool, 'race', 100)).toHaveLength(11); // create + one per round
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it('a late "set canary to 2000" with the pre-rollback version is refused; the rollback stands', async () => {
    const created = await createRoute(
      db.pool,
      { name: 'late', blue: SONNET, green: GPT4O, owner: 'wf-late' },
      CTX,
    );
    const at1000 = await changeRoute(db.pool, 'late', {
      expectedVersion: created.version,
      patch: { canaryBps: 1000 },
      actor: 'wf-late',
      reason: 'canary 10%',
      requireOwner: 'wf-late',
    });
    // The 20% step reads version `at1000.version`... then a rollback lands first.
    const rolledBack = await changeRoute(db.pool, 'late', {
      expectedVersion: at1000.version,
      patch: { canaryBps: 0, shadowRate: 0 },
      actor: 'wf-late',
      reason: 'rollback: error rate trigger',
    });
    const late = changeRoute(db.pool, 'late', {
      expectedVersion: at1000.version,
      patch: { canaryBps: 2000 },
      actor: 'wf-late',
      reason: 'canary 20% (late retry)',
      requireOwner: 'wf-late',
    });
    await expect(late).rejects.toBeInstanceOf(RoutingConflictError);
    await expect(late).rejects.toMatchObject({
      expectedVersion: at1000.version,
      actualVersion: rolledBack.version,
      owner: 'wf-late',
    });
    const now = (await getRoute(db.pool, 'late'))!;
    expect(now).toEqual(rolledBack);
    expect(now.canaryBps).toBe(0);
    expect((await listChanges(db.pool, 'late', 10)).map((c) => c.reason)).not.toContain(
      'canary 20% (late retry)',
    );
  });

  it('owner fence: only the owning rollout may change the route; null requires no owner', async () => {
    const created = await createRoute(db.pool, { name: 'fence', blue: SONNET, green: GPT4O }, CTX);
    const owned = await changeRoute(db.pool, 'fence', {
      expectedVersion: created.version,
      patch: { owner: 'wf-a' },
      requireOwner: null, // take the route only if nobody owns it
      actor: 'wf-a',
      reason: 'start rollout',
    });
    expect(owned.owner).toBe('wf-a');
    // Another rollout, even with the right version, is fenced off.
    const other = changeRoute(db.pool, 'fence', {
      expectedVersion: owned.version,
      patch: { canaryBps: 500 },
      requireOwner: 'wf-b',
      actor: 'wf-b',
      reason: 'canary',
    });
    await expect(other).rejects.toMatchObject({
      name: 'RoutingConflictError',
      kind: 'owner',
      owner: 'wf-a',
      requiredOwner: 'wf-b',
    });
    const takeOver = changeRoute(db.pool, 'fence', {
      expectedVersion: owned.version,
      patch: { owner: 'wf-b' },
      requireOwner: null,
      actor: 'wf-b',
      reason: 'start rollout',
    });
    await expect(takeOver).rejects.toMatchObject({ kind: 'owner', owner: 'wf-a' });
    // The owner may.
    const mine = await changeRoute(db.pool, 'fence', {
      expectedVersion: owned.version,
      patch: { canaryBps: 500 },
      requireOwner: 'wf-a',
      actor: 'wf-a',
      reason: 'canary 5%',
    });
    expect(mine).toMatchObject({ canaryBps: 500, owner: 'wf-a', version: owned.version + 1 });
    // An operator (no fence) can still roll back by version.
    const manual = await changeRoute(db.pool, 'fence', {
      expectedVersion: mine.version,
      patch: { canaryBps: 0, owner: null },
      actor: 'cli:alice',
      reason: 'manual rollback',
    });
    expect(manual).toMatchObject({ canaryBps: 0, owner: null });
  });

  it('idempotency key: a retry of an applied change returns its result instead of a conflict', async () => {
    const created = await createRoute(db.pool, { name: 'idem', blue: SONNET, green: GPT4O }, CTX);
    const input = {
      expectedVersion: created.version,
      patch: { canaryBps: 100 },
      actor: 'wf-i',
      reason: 'canary 1%',
      idempotencyKey: 'wf-i:step-1',
    };
    const first = await changeRoute(db.pool, 'idem', input);
    const retry = await changeRoute(db.pool, 'idem', input);
    expect(retry).toEqual(first);
    // After a rollback, the retry still reports what it did and does not write again.
    const rolledBack = await changeRoute(db.pool, 'idem', {
      expectedVersion: first.version,
      patch: { canaryBps: 0 },
      actor: 'wf-i',
      reason: 'rollback',
    });
    expect(await changeRoute(db.pool, 'idem', input)).toEqual(first);
    expect(await getRoute(db.pool, 'idem')).toEqual(rolledBack);
    // A different step with a stale version is still a conflict.
    await expect(
      changeRoute(db.pool, 'idem', { ...input, patch: { canaryBps: 200 }, idempotencyKey: 'wf-i:step-2' }),
    ).rejects.toBeInstanceOf(RoutingConflictError);
    expect(await listChanges(db.pool, 'idem', 10)).toHaveLength(3);
  });

  it('notifies model_rollout_routes with <name>:<version>, only on commit', async () => {
    await createRoute(db.pool, { name: 'notify:me', blue: SONNET, green: GPT4O }, CTX);
    const listener = new pg.Client({ connectionString: db.connectionString });
    await listener.connect();
    const got: string[] = [];
    listener.on('notification', (m) => got.push(`${m.channel} ${m.payload}`));
    await listener.query('LISTEN model_rollout_routes');
    try {
      await changeRoute(db.pool, 'notify:me', { expectedVersion: 1, patch: { canaryBps: 50 }, ...CTX });
      // A refused change notifies nothing: one that lost the compare-and-set, and one refused inside the
      // transaction after it took the row lock (the patch makes the route invalid).
      const lost = await changeRoute(db.pool, 'notify:me', {
        expectedVersion: 1,
        patch: { canaryBps: 70 },
        ...CTX,
      }).catch((err: unknown) => err);
      expect(lost).toBeInstanceOf(RoutingConflictError);
      expect(lost).toMatchObject({ kind: 'version', expectedVersion: 1, actualVersion: 2 });
      const invalid = await changeRoute(db.pool, 'notify:me', {
        expectedVersion: 2,
        patch: { canaryBps: 99999 },
        ...CTX,
      }).catch((err: unknown) => err);
      expect(invalid).toBeInstanceOf(RoutingValidationError);
      expect(invalid).toMatchObject({ field: 'canaryBps' });
      await new Promise((r) => setTimeout(r, 200));
      expect(got).toEqual(['model_rollout_routes notify:me:2']);
      expect((await getRoute(db.pool, 'notify:me'))!).toMatchObject({ version: 2, canaryBps: 50 });
      expect(await listChanges(db.pool, 'notify:me', 10)).toHaveLength(2);
    } finally {
      await listener.end();
    }
  });
});
