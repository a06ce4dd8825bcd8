import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScoringActivities } from '../activities/scoring';
import { createFallbackChain, type FallbackChain } from '../src/data-plane/providers/fallback-chain';
import { simulatorRegistry } from '../src/data-plane/providers/registry';
import { startSimulator, type SimulatorHandle } from '../src/tooling/simulator';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { OPEN_PROMPTS } from './helpers/open-prompts';

/**
 * Under a judge backlog, the two arms are scored from the same minutes (issue 19, finding 2): the candidate's
 * answers are worked through oldest first, and stable's sample must come from the same time range, or the
 * quality test compares the candidate's past with stable's present.
 */
describe('scoring under a judge backlog', () => {
  let db: TestDatabase;
  let sim: SimulatorHandle;
  let chain: FallbackChain;

  beforeAll(async () => {
    db = await createTestDatabase();
    // A judge as slow as a large model: about 1.2 s a call, 1.5 s at the tail.
    sim = await startSimulator({
      scenario: { models: { 'judge-slow': { latencyMs: { median: 1200, p99: 1500 }, accuracy: 1 } } },
    });
    chain = createFallbackChain({ registry: simulatorRegistry(sim.url), breaker: false });
  });
  afterAll(async () => {
    await chain?.close();
    await sim?.close();
    await db?.close();
  });

  it('takes stable answers from the minutes of the candidate answers it scores', async () => {
    const route = 'backlog';
    // Half an hour of traffic at a 10% canary share: 4 candidate and 36 stable answers a minute, far more
    // than a 1.2 s judge with 6 lanes scores in a 4 s batch (about 20 answers).
    await db.pool.query(
      `INSERT INTO request_events (request_id, route, tag, target, latency_ms, prompt, answer, created_at)
       SELECT 'r-' || m || '-' || i, $1::text, CASE WHEN i <= 4 THEN 'canary' ELSE 'stable' END,
              'openai:gpt-4o', 300,
              jsonb_build_array(jsonb_build_object('role', 'user', 'content', ($2::text[])[1 + (m * 40 + i) % 10])),
              'Here is what matters for your question.',
              date_trunc('minute', now()) - make_interval(mins => 30 - m) + make_interval(secs => i * 1.4)
         FROM generate_series(0, 29) AS m, generate_series(1, 40) AS i`,
      [route, OPEN_PROMPTS.slice(0, 10)],
    );
    const scoring = createScoringActivities({ pool: db.pool, chain });
    const minuteOf = `extract(epoch FROM date_trunc('minute', created_at))::float8 / 60`;
    for (let batch = 1; batch <= 3; batch++) {
      const { rows: clock } = await db.pool.query<{ now: Date }>('SELECT clock_timestamp() AS now');
      const report = await scoring.scoreAnswers({
        route,
        fromMs: 0,
        limit: 40,
        concurrency: 6,
        maxBatchMs: 4_000,
        evaluators: [{ kind: 'judge', target: { provider: 'openai', model: 'judge-slow' }, weight: 1 }],
      });
      // A backlog: the judge cannot keep up, and the batch ends with the candidate's answers still waiting.
      expect(report.backlog.candidate, `batch ${batch}`).toBeGreaterThan(50);
      const { rows } = await db.pool.query<{ tag: string; first: number; last: number; n: number }>(
        `SELECT tag, min(${minuteOf}) AS first, max(${minuteOf}) AS last, count(*)::int AS n
           FROM request_events WHERE route = $1 AND scored_at >= $2 GROUP BY tag ORDER BY tag`,
        [route, clock[0].now],
      );
      const arm = (tag: string) => rows.find((r) => r.tag === tag);
      const canary = arm('canary');
      const stable = arm('stable');
      expect(canary?.n, `batch ${batch}: candidate answers scored`).toBeGreaterThan(0);
      expect(stable?.n, `batch ${batch}: stable answers scored`).toBeGreaterThan(0);
      // Stable's scored answers lie in the minutes of the candidate's (not half an hour later).
      expect(stable!.first, `batch ${batch}: stable's first minute`).toBeGreaterThanOrEqual(canary!.first);
      expect(stable!.last, `batch ${batch}: stable's last minute`).toBeLessThanOrEqual(canary!.last);
    }
    // Over the three batches: both arms from the oldest minutes on, none from the newest.
    const { rows: overall } = await db.pool.query<{ tag: string; last: number; newest: number }>(
      `SELECT tag, max(${minuteOf}) FILTER (WHERE quality_score IS NOT NULL) AS last, max(${minuteOf}) AS newest
         FROM request_events WHERE route = $1 GROUP BY tag ORDER BY tag`,
      [route],
    );
    for (const r of overall) expect(r.last, r.tag).toBeLessThan(r.newest - 10);
  }, 60_000);
});
