import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMIT_CHUNK, COMMIT_FLUSH_MS } from '../activities/scoring';
import { rolloutWorkflow } from '../workflows';
import { statusQuery } from '../workflows/messages';
import { startWorkerProcess as startWorkerChild } from './helpers/worker-child';
import { startTestStack, type TestStack } from './helpers/stack';
import { OPEN_PROMPTS } from './helpers/open-prompts';

/** A worker killed in the middle of a scoring batch: committed scores stay, and nothing is judged twice. */
describe('scoring durability', () => {
  let stack: TestStack;
  let child: ChildProcess | undefined;
  const taskQueue = `scoring-durable-${process.pid}`;
  const CONCURRENCY = 4;
  // The judge's latency; no judgment takes less than JUDGE_FASTEST_MS (the lognormal's 1-in-30 000 low end).
  const JUDGE_MS = { median: 1500, p99: 2000 };
  const JUDGE_FASTEST_MS = 900;
  // What the scoring activity really does: a result waits for its commit at most COMMIT_FLUSH_MS, or until
  // COMMIT_CHUNK results wait. A lane finishes at most ceil(flush / fastest judgment) results in that time.
  const WAITING = Math.min(COMMIT_CHUNK, CONCURRENCY * Math.ceil(COMMIT_FLUSH_MS / JUDGE_FASTEST_MS));
  // Judge calls a killed worker loses: the lanes in flight, the results waiting, and a commit in flight.
  const LOST_MAX = CONCURRENCY + 2 * WAITING;
  // Scores committed before the kill: a batch a few commits in (a redone batch would show this many or more).
  const KILL_AFTER = 40;

  beforeAll(async () => {
    stack = await startTestStack({
      default: { latencyMs: { median: 2 }, accuracy: 0.95 },
      models: { 'judge-large': { latencyMs: JUDGE_MS, accuracy: 1 } },
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
    // Kill it once a batch has committed some chunks (a 300-answer batch takes over a minute at 4 x 1.5 s).
    for (;;) {
      if ((await judged(route)).length >= KILL_AFTER) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
    const atKill = await judged(route);
    const judgeCallsAtKill = stack.sim.stats().byModel['judge-large'] ?? 0;
    // What the dead worker had judged but not committed is lost work: at most LOST_MAX. Everything else
    // must have reached the database.
    expect(judgeCallsAtKill - atKill.length).toBeLessThanOrEqual(LOST_MAX);

    child = await startWorkerProcess();
    // The retry (after the 30 s heartbeat timeout) continues where the commits stopped.
    for (;;) {
      if ((await judged(route)).length >= atKill.length + KILL_AFTER / 2) break;
      await new Promise((r) => setTimeout(r, 500));
    }
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
    // (lost at the kill, plus what the live worker has in flight or not yet committed; a redone batch would
    // be KILL_AFTER or more over)
    expect(2 * LOST_MAX).toBeLessThan(KILL_AFTER);
    expect(judgeCalls - committedNow).toBeLessThanOrEqual(2 * LOST_MAX);
    // The retried batch reports what it scored once it ends (batches end within ~50 s).
    for (;;) {
      const status = await handle.query(statusQuery);
      if (status.scoring && status.scoring.scored.candidate + status.scoring.scored.stable > 0) break;
      await new Promise((r) => setTimeout(r, 1_000));
    }
    await handle.cancel();
    await handle.result().catch(() => undefined);
  }, 240_000);
});
