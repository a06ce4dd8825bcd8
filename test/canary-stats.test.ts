/**
 * Canary statistics cut by routing version: an event belongs to the step whose routing change produced
 * the version it was served under, whatever its router's clock wrote into created_at (routers whose clocks
 * run 35 minutes ahead and 40 minutes behind write the events below).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvaluationActivities } from '../activities/statistics';
import { parseTarget } from '../src/decision/config/target';
import { createEventWriter, type RequestEvent } from '../src/store/event-writer';
import { changeRoute, createRoute } from '../src/store/routing-state';
import { createTestDatabase, type TestDatabase } from './helpers/db';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.close();
});

const ROUTE = 'skewed-clocks';
const MINUTE = 60_000;

/** Creates the route and takes it through a 5% and a 10% canary step; returns each step's version and time. */
async function twoSteps() {
  const ctx = { actor: 'test', reason: 'canary-stats test' };
  const created = await createRoute(
    db.pool,
    {
      name: ROUTE,
      blue: { target: parseTarget('anthropic:claude-sonnet-4'), fallbacks: [] },
      green: { target: parseTarget('openai:gpt-4o'), fallbacks: [] },
    },
    ctx,
  );
  const first = await changeRoute(db.pool, ROUTE, {
    ...ctx,
    expectedVersion: created.version,
    patch: { canaryBps: 500 },
  });
  const firstAt = Date.now();
  const second = await changeRoute(db.pool, ROUTE, {
    ...ctx,
    expectedVersion: first.version,
    patch: { canaryBps: 1000 },
  });
  return { first: first.version, second: second.version, firstAt, secondAt: firstAt + 30 * MINUTE };
}

function event(
  i: number,
  tag: 'stable' | 'canary',
  version: number,
  createdAt: Date,
  over: Partial<RequestEvent> = {},
): RequestEvent {
  return {
    requestId: `skew-${tag}-${version}-${i}`,
    route: ROUTE,
    tag,
    slot: tag === 'canary' ? 'green' : 'blue',
    target: tag === 'canary' ? 'openai:gpt-4o' : 'anthropic:claude-sonnet-4',
    fallbackDepth: 0,
    latencyMs: 400 + i,
    errorClass: null,
    inputTokens: 50,
    outputTokens: 40,
    costUsd: 0.001,
    routingVersion: version,
    createdAt,
    ...over,
  };
}

describe('canary statistics by routing version', () => {
  it('counts events in the step of their routing version, whatever their created_at says', async () => {
    const v = await twoSteps();
    const writer = createEventWriter({ pool: db.pool });
    // Step 1 (5%): a router whose clock runs 35 minutes AHEAD writes its events into step 2's time.
    for (let i = 0; i < 10; i++)
      writer.record(
        event(i, 'canary', v.first, new Date(v.firstAt + 35 * MINUTE), {
          errorClass: i < 4 ? 'server_error' : null,
        }),
      );
    for (let i = 0; i < 190; i++)
      writer.record(event(i, 'stable', v.first, new Date(v.firstAt + 35 * MINUTE)));
    // Step 2 (10%): a router whose clock runs 40 minutes BEHIND writes its events before step 1 began.
    for (let i = 0; i < 20; i++)
      writer.record(event(i, 'canary', v.second, new Date(v.secondAt - 40 * MINUTE), { latencyMs: 5000 }));
    for (let i = 0; i < 180; i++)
      writer.record(event(i, 'stable', v.second, new Date(v.secondAt - 40 * MINUTE)));
    // A canary answer its fallback gave: an error of the candidate's primary when judged on its own answers.
    writer.record(
      event(99, 'canary', v.first, new Date(v.firstAt + 35 * MINUTE), {
        fallbackDepth: 1,
        target: 'anthropic:claude-sonnet-4',
      }),
    );
    // The shadow phase and the pre-canary stable traffic (older versions) are not the canary's.
    for (let i = 0; i < 30; i++) writer.record(event(i, 'stable', v.first - 1, new Date(v.firstAt + MINUTE)));
    await writer.flush();
    await writer.close();

    const acts = createEvaluationActivities({ pool: db.pool });
    const stats = await acts.canaryStats({
      route: ROUTE,
      fromMs: v.firstAt,
      slowThresholdMs: 1000,
      stepVersions: [v.first, v.second],
    });
    expect(stats.cumulative.canary).toMatchObject({ requests: 31, errors: 4, slow: 20 });
    expect(stats.cumulative.stable.requests).toBe(370);
    expect(stats.step.canary).toMatchObject({ requests: 20, errors: 0, slow: 20 });
    expect(stats.step.stable.requests).toBe(180);
    expect(stats.previousSteps).toEqual([
      {
        canary: { requests: 11, errors: 4, slow: 0, refusals: 0, attempts: 11, attemptErrors: 0 },
        stable: { requests: 190, errors: 0, slow: 0, refusals: 0, attempts: 190, attemptErrors: 0 },
      },
    ]);
    const ownAnswers = await acts.canaryStats({
      route: ROUTE,
      fromMs: v.firstAt,
      slowThresholdMs: 1000,
      stepVersions: [v.first, v.second],
      candidateOwnEvidence: true,
    });
    expect(ownAnswers.previousSteps![0].canary).toMatchObject({ requests: 11, errors: 5, slow: 0 });
    expect(ownAnswers.cumulative.canary).toMatchObject({ requests: 31, errors: 5 });
    expect(ownAnswers.fallbacks.canary).toBe(1);
  });
});
