import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { rolloutWorkflow } from '../workflows';
import { statusQuery } from '../workflows/messages';
import { createRoutingActivities } from '../activities/routing';
import { getRoute, listChanges } from '../src/store/routing-state';
import { startWorkerProcess as startWorkerChild } from './helpers/worker-child';
import { startTestStack, type TestStack } from './helpers/stack';
import { until, waitForStatus } from './helpers/rollout';

/** Durability: a worker killed mid-canary, and late retries meeting a newer routing version. */
describe('rollout durability', () => {
  let stack: TestStack;
  let child: ChildProcess | undefined;
  const taskQueue = `durable-${process.pid}`;

  beforeAll(async () => {
    stack = await startTestStack({ default: { latencyMs: { median: 250, p99: 800 }, accuracy: 0.95 } });
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await stack?.close();
  });

  const startWorkerProcess = () => startWorkerChild(stack, taskQueue);

  it('continues at the same share after the worker is SIGKILLed, with no step repeated or skipped', async () => {
    const route = 'durable';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 60);
    child = await startWorkerProcess();
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
              promotion: { minCanaryScoredPerStep: 15, minCanaryRequestsPerStep: 20 },
              finalGate: { toleranceRel: 0.1 },
            },
          },
        },
      ],
    });
    // Kill it once the canary has taken its first step.
    await waitForStatus(handle, (s) => s.shareBps >= 2000, 90_000);
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const atKill = await getRoute(stack.db.pool, route);
    await new Promise((r) => setTimeout(r, 3_000));
    // Nobody runs the workflow: routing stays exactly where it was.
    expect((await getRoute(stack.db.pool, route))!.version).toBe(atKill!.version);

    child = await startWorkerProcess();
    await until(
      async () => (await handle.describe()).status.name !== 'RUNNING',
      'the rollout to end',
      120_000,
      250,
    );
    const outcome = await handle.result();
    await traffic.stop();
    expect(outcome.result).toBe('completed');
    const status = await handle.query(statusQuery);
    expect(status.steps.map((s) => s.toBps)).toEqual([1000, 2000, 5000, 10000]);
    // Each share was written exactly once in the audit trail.
    const shares = (await listChanges(stack.db.pool, route, 100))
      .reverse()
      .filter((c) => c.before && c.after.canaryBps !== c.before.canaryBps && c.after.canaryBps > 0)
      .map((c) => c.after.canaryBps);
    expect(shares).toEqual([1000, 2000, 5000]);
  }, 180_000);

  it('refuses a late retry of a canary step after a rollback (compare-and-set), and replays a retried step idempotently', async () => {
    const route = 'late-retry';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const acts = createRoutingActivities({ pool: stack.db.pool });
    const owner = 'rollout-late-retry';
    const claim = await acts.claimRoute({
      route,
      owner,
      idempotencyKey: 'run1:claim',
      candidate: { target: { provider: 'openai', model: 'gpt-4o' }, fallbacks: [] },
      salt: 's1',
      actor: owner,
    });
    const v1 = await acts.applyRouting({
      route,
      owner,
      idempotencyKey: 'run1:1',
      expectedVersion: claim.version,
      patch: { canaryBps: 1000 },
      actor: owner,
      reason: 'canary 10%',
    });
    // "Set canary to 20%" is sent, then a rollback happens before its retry lands.
    await acts.restoreStable({
      route,
      owner,
      idempotencyKey: 'run1:restore',
      stableSlot: 'blue',
      actor: owner,
      reason: 'rollback',
    });
    const late = acts.applyRouting({
      route,
      owner,
      idempotencyKey: 'run1:2',
      expectedVersion: v1,
      patch: { canaryBps: 2000 },
      actor: owner,
      reason: 'canary 20%',
    });
    await expect(late).rejects.toBeInstanceOf(ApplicationFailure);
    await expect(late).rejects.toMatchObject({ type: 'RoutingConflict', nonRetryable: true });
    // A retry of the step that did commit gets its own result back, and changes nothing.
    const replayed = await acts.applyRouting({
      route,
      owner,
      idempotencyKey: 'run1:1',
      expectedVersion: claim.version,
      patch: { canaryBps: 1000 },
      actor: owner,
      reason: 'canary 10%',
    });
    expect(replayed).toBe(v1);
    expect(await getRoute(stack.db.pool, route)).toMatchObject({
      canaryBps: 0,
      stableSlot: 'blue',
      owner: null,
    });
  });
});
