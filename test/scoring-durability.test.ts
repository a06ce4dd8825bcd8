import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rolloutWorkflow } from '../workflows';
import { statusQuery } from '../workflows/messages';
import { startWorkerProcess as startWorkerChild } from './helpers/worker-child';
import { startTestStack, type TestStack } from './helpers/stack';
import { OPEN_PROMPTS } from './helpers/open-prompts';
import { until } from './helpers/rollout';

/** A worker killed in the middle of a scoring batch: committed scores stay, and nothing is judged twice. */
describe('scoring durability', () => {
  let stack: TestStack;
  let child: ChildProcess | undefined;
  const taskQueue = `scoring-durable-${process.pid}`;
  const CONCURRENCY = 4;
  // What a batch can hold judged but not yet committed. The activity commits every 500 ms (or at 32
  // results, which 4 lanes of a 1.5 s judge never reach in 500 ms): about 4 lanes x 0.5 s / 1.5 s ≈ 1.3
  // results, plus those of a commit still on its way to Postgres. 8 leaves room for a loaded machine.
  const UNFLUSHED = 8;

  beforeAll(async () => {
    stack = await startTestStack({
      default: { latencyMs: { median: 2 }, accuracy: 0.95 },
      models: { 'judge-large': { latencyMs: { median: 1500, p99: 2000 }, accuracy: 1 } },
    });
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await stack?.close();
  });

  const startWorkerProcess = () => startWorkerChild(stack, taskQueue);

  async function judged(route: string) {
    const { rows } = await stack.db.pool.query<{ id: string; score: number; at: Date }>(
      `SELECT id, quality_score AS score, scored_at AS at FROM request_events
        WHERE route = $1 AND scored_at IS NOT NULL ORDER BY id`,
      [route],
    );
    return rows;
  }

  it('keeps every committed score and judges no answer twice when the worker dies mid-batch', async () => {
    const route = 'scoring-durable';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 20, { prompts: OPEN_PROMPTS });
    await new Promise((r) => setTimeout(r, 1_000));
    child = await startWorkerProcess();
    const handle = await stack.client.workflow.start(rolloutWorkflow, {
      taskQueue,
      workflowId: `rollout-${route}`,
      args: [
        {
          route,
          candidate: 'openai:gpt-4o',
          canary: { steps: [5000, 10000] },
          evaluation: {
            interval: '1s',
            scoreBatch: 300,
            concurrency: CONCURRENCY,
            evaluators: [{ kind: 'judge', target: 'openai:judge-large' }],
          },
          triggers: { interval: '1s' },
          // Holds at 50% whatever the scores say: this test is about the scoring, not the decision.
          policy: { sequential: { promotion: { minCanaryScoredPerStep: 1_000_000 } } },
        },
      ],
    });
    // Kill it once a batch has committed some 40 scores (a 300-answer batch takes over a minute at 4 x 1.5 s;
    // 40 take ~15 s once the worker is up).
    await until(
      async () => (await judged(route)).length >= 40,
      '40 committed scores before the kill',
      90_000,
      200,
    );
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
    const atKill = await judged(route);
    const judgeCallsAtKill = stack.sim.stats().byModel['judge-large'] ?? 0;
    // What the dead worker had judged but not committed is lost work: at most the lanes in flight plus
    // one unflushed chunk. Everything else must have reached the database.
    expect(judgeCallsAtKill - atKill.length).toBeLessThanOrEqual(CONCURRENCY + UNFLUSHED);

    child = await startWorkerProcess();
    // The retry (after the 30 s heartbeat timeout) continues where the commits stopped.
    await until(
      async () => (await judged(route)).length >= atKill.length + 24,
      '24 more committed scores from the retried batch on the new worker (it starts after the 30 s heartbeat timeout)',
      100_000,
      500,
    );
    await traffic.stop();
    const after = await judged(route);
    const afterById = new Map(after.map((r) => [r.id, r]));
    // Every score committed before the kill is still there, unchanged (never rescored).
    for (const row of atKill) {
      expect(afterById.get(row.id)).toEqual(row);
    }
    // No answer was judged twice: the judge saw each committed answer once, plus at most what was lost.
    const judgeCalls = stack.sim.stats().byModel['judge-large'] ?? 0;
    const committedNow = (await judged(route)).length;
    // (lost at the kill, plus what the live worker has in flight or not yet flushed; a redone batch would
    // be 40 or more over)
    expect(judgeCalls - committedNow).toBeLessThanOrEqual(2 * (CONCURRENCY + UNFLUSHED));
    // The retried batch reports what it scored once it ends (batches end within ~50 s).
    await until(
      async () => {
        const { scoring } = await handle.query(statusQuery);
        return scoring !== undefined && scoring.scored.candidate + scoring.scored.stable > 0;
      },
      "the retried batch's report in the rollout status",
      90_000,
      1_000,
    );
    await handle.cancel();
    await handle.result().catch(() => undefined);
  }, 300_000);
});
