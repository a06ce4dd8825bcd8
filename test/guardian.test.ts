import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rolloutWorkflow } from '../workflows';
import { guardianStatusQuery, routeGuardianWorkflow, stopGuardianSignal } from '../workflows/guardian';
import { guardianWorkflowId } from '../activities/guardian';
import { getRoute } from '../src/store/routing-state';
import { startTestStack, type TestStack } from './helpers/stack';

/**
 * The route guardian: after a rollout completes, it keeps the triggers on the promoted model and switches
 * back when that model degrades later; it continues as new so its history stays bounded.
 */
describe('routeGuardianWorkflow', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack({ default: { latencyMs: { median: 250, p99: 800 }, accuracy: 0.95 } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('switches back to the previous slot when the promoted model degrades after the rollout', async () => {
    const route = 'guarded';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 60);
    const rollout = await stack.client.workflow.start(rolloutWorkflow, {
      taskQueue: stack.env.taskQueue,
      workflowId: `rollout-${route}`,
      args: [
        {
          route,
          candidate: 'openai:gpt-4o',
          strategy: 'blue-green',
          triggers: { interval: '1s', minRequests: 20 },
          bake: { duration: '2s' },
          alerts: {},
        },
      ],
    });
    expect((await rollout.result()).result).toBe('completed');
    expect(await getRoute(stack.db.pool, route)).toMatchObject({ stableSlot: 'green', owner: null });

    // Weeks later (here: now), the promoted model starts failing.
    stack.sim.setBehaviour('gpt-4o', { errorRate: 1, errorKinds: { server_error: 1 } });
    const guardian = stack.client.workflow.getHandle(guardianWorkflowId(route));
    const deadline = Date.now() + 30_000;
    while ((await getRoute(stack.db.pool, route))!.stableSlot !== 'blue') {
      if (Date.now() > deadline) throw new Error('the guardian did not switch back within 30 s');
      await new Promise((r) => setTimeout(r, 250));
    }
    // The switch is recorded in the guardian's state once its decision is written, just after the flip.
    let state = await guardian.query(guardianStatusQuery);
    while (!state.switches?.length && Date.now() < deadline + 10_000) {
      await new Promise((r) => setTimeout(r, 100));
      state = await guardian.query(guardianStatusQuery);
    }
    expect(state.switches?.at(-1)).toMatchObject({ from: 'openai:gpt-4o', to: 'anthropic:claude-sonnet-4' });
    expect(state.switches?.at(-1)?.reason).toMatch(/error_rate/);
    const decisions = await stack.db.pool.query(
      `SELECT phase, action FROM rollout_decisions WHERE route = $1 AND phase = 'guarding'`,
      [route],
    );
    expect(decisions.rows).toEqual([{ phase: 'guarding', action: 'rollback' }]);
    await traffic.stop();
    await guardian.signal(stopGuardianSignal);
    stack.sim.reset();
  }, 120_000);

  it('switches back when the promoted model refuses requests the previous model served', async () => {
    const route = 'guarded-refusals';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 60);
    // The route's history before the rollout: what the previous model showed.
    await new Promise((r) => setTimeout(r, 2000));
    const rollout = await stack.client.workflow.start(rolloutWorkflow, {
      taskQueue: stack.env.taskQueue,
      workflowId: `rollout-${route}`,
      args: [
        {
          route,
          candidate: 'openai:gpt-4o-2024-08-06',
          strategy: 'blue-green',
          triggers: { interval: '1s', minRequests: 20 },
          bake: { duration: '2s' },
          alerts: {},
        },
      ],
    });
    expect((await rollout.result()).result).toBe('completed');
    // Later, the promoted model starts refusing a parameter the application sends. That is no error (the
    // triggers stay quiet), but the previous model served those requests: the guardian compares the rates.
    stack.sim.setBehaviour('gpt-4o-2024-08-06', {
      latencyMs: { median: 250, p99: 800 },
      errorRate: 0.3,
      errorKinds: { unsupported_parameter: 1 },
    });
    const guardian = stack.client.workflow.getHandle(guardianWorkflowId(route));
    const deadline = Date.now() + 40_000;
    let state = await guardian.query(guardianStatusQuery);
    while (!state.switches?.length) {
      if (Date.now() > deadline)
        throw new Error(`no switch back within 40 s: ${JSON.stringify(state.lastComparisons)}`);
      await new Promise((r) => setTimeout(r, 250));
      state = await guardian.query(guardianStatusQuery);
    }
    expect(state.switches.at(-1)).toMatchObject({
      from: 'openai:gpt-4o-2024-08-06',
      to: 'anthropic:claude-sonnet-4',
    });
    expect(state.switches.at(-1)?.reason).toMatch(
      /refusals: refused \d+% of requests as unsupported_parameter since it took over, the previous model 0%/,
    );
    expect(await getRoute(stack.db.pool, route)).toMatchObject({ stableSlot: 'blue' });
    await traffic.stop();
    await guardian.signal(stopGuardianSignal);
    stack.sim.reset();
  }, 120_000);

  it('continues as new when the server suggests it, keeping its state', async () => {
    const route = 'long-guarded';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const handle = await stack.client.workflow.start(routeGuardianWorkflow, {
      taskQueue: stack.env.taskQueue,
      workflowId: guardianWorkflowId(route),
      args: [{ route, triggers: [], intervalMs: 100, sinceMs: Date.now() }],
    });
    // The test server suggests continue-as-new after 120 history events (see test/global-setup.ts).
    const deadline = Date.now() + 60_000;
    let state = await handle.query(guardianStatusQuery);
    while ((state.generation ?? 0) < 1) {
      if (Date.now() > deadline) throw new Error(`no continue-as-new after ${state.checks} checks`);
      await new Promise((r) => setTimeout(r, 250));
      state = await handle.query(guardianStatusQuery);
    }
    expect(state.checks).toBeGreaterThan(5);
    const description = await handle.describe();
    expect(description.runId).not.toBe(handle.firstExecutionRunId);
    await handle.signal(stopGuardianSignal);
  }, 90_000);
});
