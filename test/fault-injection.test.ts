import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { rolloutWorkflow } from '../workflows';
import { statusQuery } from '../workflows/messages';
import { getRoute, listChanges } from '../src/store/routing-state';
import { startFreezableProxy, type FreezableProxy } from './helpers/freezable-proxy';
import { OPEN_PROMPTS } from './helpers/open-prompts';
import { startTestStack, type TestStack } from './helpers/stack';
import { until as waitUntil } from './helpers/rollout';
import { startWorkerProcess } from './helpers/worker-child';

/**
 * Fault injection with real processes: the worker (a child process) is SIGKILLed inside a routing change
 * and inside a scoring batch, then started again. The rollout must complete with every routing change
 * applied once and audited once, and every score kept and none judged twice.
 */
describe('fault injection: worker SIGKILL', () => {
  let stack: TestStack;
  let child: ChildProcess | undefined;
  let proxy: FreezableProxy | undefined;
  let taskQueue = '';

  beforeAll(async () => {
    stack = await startTestStack({
      default: { latencyMs: { median: 250, p99: 800 }, accuracy: 0.95 },
      // A judge with a realistic latency: a batch takes seconds, so a kill lands inside it.
      models: { 'judge-large': { latencyMs: { median: 1500, p99: 2000 }, accuracy: 1 } },
    });
  });
  // Each test has its own worker process on its own task queue, gone when the test ends.
  beforeEach((ctx) => {
    taskQueue = `faults-${process.pid}-${ctx.task.id}`;
  });
  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) await kill();
    child = undefined;
    await proxy?.close();
    proxy = undefined;
  });
  afterAll(async () => {
    await stack?.close();
  });

  const until = (what: () => Promise<boolean>, label: string, timeoutMs = 120_000) =>
    waitUntil(what, label, timeoutMs, 50);

  async function kill(): Promise<void> {
    const proc = child!;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  }

  /** The canary shares the audit trail recorded, in order, and every version in it exactly once. */
  async function auditedShares(route: string): Promise<number[]> {
    const changes = (await listChanges(stack.db.pool, route, 200)).reverse();
    const versions = changes.map((c) => c.after.version);
    expect(new Set(versions).size).toBe(versions.length);
    // The route's version counts its changes: one audit row per version, none missing.
    expect(versions).toEqual(versions.map((_, i) => versions[0] + i));
    return changes
      .filter((c) => c.before && c.after.canaryBps !== c.before.canaryBps && c.after.canaryBps > 0)
      .map((c) => c.after.canaryBps);
  }

  /**
   * Attempts of each activity of a type that completed, in history order (a retried one shows attempt ≥ 2),
   * over every run of the rollout: it may have continued as new since the kill.
   */
  async function completedAttempts(
    handle: WorkflowHandleWithFirstExecutionRunId,
    type: string,
  ): Promise<number[]> {
    const attempts: number[] = [];
    for (let runId: string | null | undefined = handle.firstExecutionRunId; runId;) {
      const history: temporal.api.history.v1.IHistory = await stack.client.workflow
        .getHandle(handle.workflowId, runId)
        .fetchHistory();
      const events = history.events ?? [];
      const scheduled = new Set<string>(); // event ids count from 1 again in every run
      for (const e of events) {
        if (e.activityTaskScheduledEventAttributes?.activityType?.name === type)
          scheduled.add(String(e.eventId));
        const started = e.activityTaskStartedEventAttributes;
        if (started && scheduled.has(String(started.scheduledEventId))) attempts.push(started.attempt ?? 1);
      }
      runId = events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
    }
    return attempts;
  }

  it.each([
    { when: 'after it committed, before the worker reported it', committed: true },
    { when: 'inside its transaction, before it committed', committed: false },
  ])(
    'a routing change killed $when is applied and audited once',
    async ({ committed }) => {
      const route = committed ? 'kill-routing-committed' : 'kill-routing-uncommitted';
      await stack.createRoute(route, 'anthropic:claude-sonnet-4');
      const traffic = stack.traffic(route, 60);
      // The worker reaches Temporal through a proxy the test can cut: its report of the change is lost.
      proxy = await startFreezableProxy(stack.env.address);
      child = await startWorkerProcess(stack, taskQueue, { temporalAddress: proxy.address });
      const handle = await stack.client.workflow.start(rolloutWorkflow, {
        taskQueue,
        workflowId: `rollout-${route}`,
        args: [
          {
            route,
            candidate: 'openai:gpt-4o',
            evaluation: { interval: '1s' },
            triggers: { interval: '1s' },
            bake: { duration: '1s' },
            canary: { steps: [1000, 2000, 5000, 10000] },
            policy: {
              sequential: {
                // What is under test is the routing change, not the statistics: an equal candidate's chance
                // of a false rollback (about 1 in 100 rollouts at the default 1%) is made negligible here.
                alpha: 0.0001,
                promotion: { minCanaryScoredPerStep: 15, minCanaryRequestsPerStep: 20 },
                finalGate: { toleranceRel: 0.1 },
              },
            },
          },
        ],
      });
      await until(async () => (await getRoute(stack.db.pool, route))!.canaryBps >= 1000, 'the first step');

      // Hold the route's row lock: the next routing change then waits inside its transaction.
      const lock = new pg.Client({ connectionString: stack.db.connectionString });
      await lock.connect();
      await lock.query('BEGIN');
      const held = (await lock.query(`SELECT version FROM routes WHERE name = $1 FOR UPDATE`, [route]))
        .rows[0] as { version: string };
      await until(async () => {
        const { rows } = await stack.db.pool.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock'
            AND query LIKE '%FROM routes WHERE name = $1 FOR UPDATE%'`,
        );
        return rows[0].n > 0;
      }, 'the worker inside a routing change');
      if (committed) {
        // Cut the worker off from Temporal, let the change commit, and kill the worker before anyone hears of it.
        proxy.freeze();
        await lock.query('ROLLBACK');
        await until(
          async () => (await getRoute(stack.db.pool, route))!.version > Number(held.version),
          'the change to commit',
        );
        await kill();
        proxy.thaw();
      } else {
        // Kill the worker while its transaction waits: the change dies with its connection.
        await kill();
        await lock.query('ROLLBACK');
      }
      await lock.end();
      const applied = (await getRoute(stack.db.pool, route))!;
      expect(applied.version).toBe(Number(held.version) + (committed ? 1 : 0));
      const description = await handle.describe();
      expect(description.raw.pendingActivities?.map((a) => a.activityType?.name)).toContain('applyRouting');

      // Nobody runs the workflow: routing stays exactly as the dead worker left it.
      await new Promise((r) => setTimeout(r, 2_000));
      expect((await getRoute(stack.db.pool, route))!.version).toBe(applied.version);

      // A new worker: after the activity's timeout its retry applies the change, or finds it applied (by its
      // idempotency key) when the dead worker had committed it.
      child = await startWorkerProcess(stack, taskQueue, { temporalAddress: proxy.address });
      const outcome = await handle.result();
      await traffic.stop();
      // The reason and evidence in the message: a rollback here must say which test decided it.
      expect(outcome.result, JSON.stringify(outcome)).toBe('completed');
      const status = await handle.query(statusQuery);
      expect(status.steps.map((s) => s.toBps)).toEqual([1000, 2000, 5000, 10000]);
      // The killed change really ran twice: its completed attempt is a retry.
      expect(Math.max(...(await completedAttempts(handle, 'applyRouting')))).toBeGreaterThanOrEqual(2);
      // ... and the audit trail has every change once: each share once, in order.
      expect(await auditedShares(route)).toEqual([1000, 2000, 5000]);
      expect(await getRoute(stack.db.pool, route)).toMatchObject({
        stableSlot: 'green',
        canaryBps: 0,
        owner: null,
      });
    },
    360_000,
  );

  it('a scoring batch killed mid-way loses no committed score, judges no answer twice, and the rollout completes', async () => {
    const route = 'kill-scoring';
    const CONCURRENCY = 4;
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 20, { prompts: OPEN_PROMPTS });
    child = await startWorkerProcess(stack, taskQueue);
    const judged = async () =>
      (
        await stack.db.pool.query<{ id: string; score: number; at: Date }>(
          `SELECT id, quality_score AS score, scored_at AS at FROM request_events
            WHERE route = $1 AND scored_at IS NOT NULL ORDER BY id`,
          [route],
        )
      ).rows;
    const judgeCalls = () => stack.sim.stats().byModel['judge-large'] ?? 0;
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
          bake: { duration: '1s' },
          policy: {
            sequential: {
              promotion: { minCanaryScoredPerStep: 30, minCanaryRequestsPerStep: 20 },
              finalGate: { enabled: false },
            },
          },
        },
      ],
    });
    // Kill it inside a batch: some scores committed, the batch running, judge calls in flight.
    await until(async () => {
      if ((await judged()).length < 8) return false;
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      const batch = pending.some((a) => a.activityType?.name === 'scoreAnswers' && a.lastStartedTime);
      return batch && judgeCalls() > (await judged()).length;
    }, 'a scoring batch in flight');
    await kill();
    const atKill = await judged();
    const lostAtKill = judgeCalls() - atKill.length;
    expect(lostAtKill).toBeGreaterThan(0); // the kill landed inside the batch: judged, not yet committed
    expect((await getRoute(stack.db.pool, route))!.canaryBps).toBe(5000);

    child = await startWorkerProcess(stack, taskQueue);
    const outcome = await handle.result();
    await traffic.stop();
    expect(outcome.result).toBe('completed');
    // The batch was retried after the heartbeat timeout (its completed attempt is the second or later).
    expect(Math.max(...(await completedAttempts(handle, 'scoreAnswers')))).toBeGreaterThanOrEqual(2);
    const after = await judged();
    const afterById = new Map(after.map((r) => [r.id, r]));
    // Every score committed before the kill is still there, unchanged (never rescored).
    for (const row of atKill) expect(afterById.get(row.id)).toEqual(row);
    // No answer judged twice: every judge call since is a committed score, except what the kill lost
    // (those answers were still unscored, so the retry judged them again).
    expect(judgeCalls() - after.length).toBeLessThanOrEqual(lostAtKill);
    expect(after.length).toBeGreaterThan(atKill.length);
    // Routing: each step once in the audit trail, the candidate stable.
    expect(await auditedShares(route)).toEqual([5000]);
    expect(await getRoute(stack.db.pool, route)).toMatchObject({ stableSlot: 'green', owner: null });
  }, 300_000);
});
