import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScoringActivities } from '../activities/scoring';
import { createFallbackChain, type FallbackChain } from '../src/data-plane/providers/fallback-chain';
import { simulatorRegistry } from '../src/data-plane/providers/registry';
import { startSimulator, type SimulatorHandle } from '../src/tooling/simulator';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { OPEN_PROMPTS } from './helpers/open-prompts';

/**
 * The scoring activity on its own (real Postgres, the simulator as judge through the real SDK): which
 * answers a batch takes, what a failing judge leaves behind, and the cost budget.
 */
describe('scoreAnswers', () => {
  let db: TestDatabase;
  let sim: SimulatorHandle;
  let chain: FallbackChain;
  let scoring: ReturnType<typeof createScoringActivities>;

  beforeAll(async () => {
    db = await createTestDatabase();
    sim = await startSimulator({
      scenario: {
        default: { latencyMs: { median: 20 } },
        models: {
          // A priced judge (gpt-4o-mini's list price), with long replies so each call costs something.
          'gpt-4o-mini': { latencyMs: { median: 50 }, accuracy: 1 },
          'judge-down': { errorRate: 1, errorKinds: { server_error: 1 } },
        },
      },
    });
    chain = createFallbackChain({ registry: simulatorRegistry(sim.url), breaker: false });
    scoring = createScoringActivities({ pool: db.pool, chain });
  });
  afterAll(async () => {
    await chain?.close();
    await sim?.close();
    await db?.close();
  });

  async function fill(route: string, canary: number, stable: number): Promise<void> {
    await db.pool.query(
      `INSERT INTO request_events (request_id, route, tag, target, latency_ms, prompt, answer)
       SELECT $1::text || '-' || i, $1::text, CASE WHEN i <= $2::int THEN 'canary' ELSE 'stable' END, 'openai:gpt-4o', 100,
              jsonb_build_array(jsonb_build_object('role', 'user', 'content', ($4::text[])[1 + i % 10])),
              'A fluent answer about something else entirely.'
         FROM generate_series(1, $2::int + $3::int) AS i`,
      [route, canary, stable, OPEN_PROMPTS.slice(0, 10)],
    );
  }

  const judge = (model: string) => [
    { kind: 'judge' as const, target: { provider: 'openai', model }, weight: 1 },
  ];

  it('takes the scarce canary answers first and matches the stable sample to them', async () => {
    await fill('sample', 10, 500);
    const report = await scoring.scoreAnswers({
      route: 'sample',
      fromMs: 0,
      limit: 40,
      evaluators: judge('gpt-4o-mini'),
    });
    expect(report.byArm).toEqual({ candidate: { scored: 10, failed: 0 }, stable: { scored: 10, failed: 0 } });
    expect(report.backlog).toEqual({ candidate: 0, stable: 490 });
    expect(report.bySource).toEqual({ judge: 20 });
  });

  it('scores only the sampled fraction of an arm, the same answers on every batch', async () => {
    await fill('sampled', 0, 400);
    const req = {
      route: 'sampled',
      fromMs: 0,
      limit: 1000,
      evaluators: [{ kind: 'checks' as const, minLength: 1, weight: 1 }],
      sample: { stable: 0.25 },
    };
    const first = await scoring.scoreAnswers(req);
    expect(first.scored).toBeGreaterThan(60);
    expect(first.scored).toBeLessThan(140);
    expect((await scoring.scoreAnswers(req)).scored).toBe(0); // the rest is out of the sample for good
  });

  it('leaves the answers of a failing judge unscored, with the reason, and never falls back to a heuristic', async () => {
    await fill('judge-down', 5, 5);
    // The default list (reference, feedback, then the judge): the judge's failure ends it.
    const report = await scoring.scoreAnswers({
      route: 'judge-down',
      fromMs: 0,
      limit: 100,
      judge: { provider: 'openai', model: 'judge-down' },
    });
    expect(report.scored).toBe(0);
    expect(report.failed).toBe(10);
    expect(report.failures).toEqual({ 'judge: server_error': 10 });
    const { rows } = await db.pool.query(
      `SELECT count(*) FILTER (WHERE quality_score IS NOT NULL)::int AS scored,
              count(*) FILTER (WHERE score_error = 'judge: server_error')::int AS failed
         FROM request_events WHERE route = 'judge-down'`,
    );
    expect(rows[0]).toEqual({ scored: 0, failed: 10 });
    // Failed answers are not retried by the next batch (they would starve the new ones).
    const again = await scoring.scoreAnswers({
      route: 'judge-down',
      fromMs: 0,
      limit: 100,
      judge: { provider: 'openai', model: 'judge-down' },
    });
    expect(again.scored + again.failed).toBe(0);
  });

  it('stops judging once the rollout has spent its budget, and says so', async () => {
    await fill('budget', 200, 0);
    const first = await scoring.scoreAnswers({
      route: 'budget',
      fromMs: 0,
      limit: 200,
      concurrency: 2,
      evaluators: judge('gpt-4o-mini'),
    });
    const perAnswer = first.costUsd / first.scored;
    expect(perAnswer).toBeGreaterThan(0);
    // A new route with the same answers and a budget of ~20 judge calls.
    await fill('budget2', 200, 0);
    const budgetUsd = perAnswer * 20;
    const capped = await scoring.scoreAnswers({
      route: 'budget2',
      fromMs: 0,
      limit: 200,
      concurrency: 2,
      evaluators: judge('gpt-4o-mini'),
      budgetUsd,
    });
    expect(capped.budgetExhausted).toBe(true);
    // At most the calls in flight when the budget ran out go over it.
    expect(capped.scored).toBeGreaterThanOrEqual(20);
    expect(capped.scored).toBeLessThanOrEqual(22);
    expect(capped.totalCostUsd).toBeGreaterThanOrEqual(budgetUsd);
    const after = await scoring.scoreAnswers({
      route: 'budget2',
      fromMs: 0,
      limit: 200,
      evaluators: judge('gpt-4o-mini'),
      budgetUsd,
    });
    expect(after.scored).toBe(0);
    expect(after.budgetExhausted).toBe(true);
  });

  it('compares shadow pairs with the pairwise judge, side by side, and counts a failed comparison as failed, not a tie', async () => {
    const pairs = async (route: string, n: number) => {
      await db.pool.query(
        `INSERT INTO request_events (request_id, route, tag, target, latency_ms, prompt, answer)
         SELECT $1::text || '-' || i, $1::text, t.tag, 'openai:gpt-4o', 100,
                jsonb_build_array(jsonb_build_object('role', 'user', 'content', ($3::text[])[1 + i % 10])),
                CASE WHEN t.tag = 'shadow' THEN 'Off topic: the weather is nice.'
                     ELSE 'On ' || ($3::text[])[1 + i % 10] || ': here is what matters.' END
           FROM generate_series(1, $2::int) AS i, (VALUES ('stable'), ('shadow')) AS t(tag)`,
        [route, n, OPEN_PROMPTS.slice(0, 10)],
      );
      await db.pool.query(
        `INSERT INTO shadow_comparisons (route, request_id, stable_target, shadow_target)
         SELECT $1::text, $1::text || '-' || i, 'anthropic:claude-sonnet-4', 'openai:gpt-4o' FROM generate_series(1, $2::int) AS i`,
        [route, n],
      );
    };
    await pairs('pairs', 30);
    const t0 = Date.now();
    const counts = await scoring.compareShadowPairs({
      route: 'pairs',
      fromMs: 0,
      limit: 100,
      judge: { provider: 'openai', model: 'gpt-4o-mini' },
    });
    expect(Date.now() - t0).toBeLessThan(30 * 2 * 50); // side by side: far less than one call after another
    expect(counts).toMatchObject({ stableBetter: 30, shadowBetter: 0, ties: 0, pending: 0, failed: 0 });

    await pairs('pairs-down', 6);
    const down = await scoring.compareShadowPairs({
      route: 'pairs-down',
      fromMs: 0,
      limit: 100,
      judge: { provider: 'openai', model: 'judge-down' },
    });
    expect(down).toMatchObject({ stableBetter: 0, shadowBetter: 0, ties: 0, pending: 0, failed: 6 });
  });
});
