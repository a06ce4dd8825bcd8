import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureRetentionWorkflow } from '../workflows';
import {
  RETENTION_SCHEDULE_ID,
  ensureRetentionSchedule,
} from '../src/control-plane/temporal/retention-schedule';
import { createRouter, type Router } from '../src/data-plane/router/router';
import { simulatorRegistry } from '../src/data-plane/providers/registry';
import { changeRoute, getRoute } from '../src/store/routing-state';
import { ensureEventPartitions } from '../src/store/event-writer';
import { startTestStack, type TestStack } from './helpers/stack';

/** Capture where scoring needs it (routes under rollout), in the form asked for, and gone after retention. */
describe('capture and retention', () => {
  let stack: TestStack;
  let router: Router;

  beforeAll(async () => {
    stack = await startTestStack({ default: { latencyMs: { median: 2 } } });
    // A router with the defaults a gateway gets: capture on routes under rollout, prompts redacted.
    router = await createRouter({
      database: stack.db,
      providers: { registry: simulatorRegistry(stack.sim.url), breaker: false },
      capture: { prompts: 'redact', routes: { 'always-captured': 'all' } },
      cache: { pollIntervalMs: 100 },
      events: { flushIntervalMs: 10 },
    });
  });
  afterAll(async () => {
    await router?.close();
    await stack?.close();
  });

  async function captured(route: string) {
    const { rows } = await stack.db.pool.query<{ prompt: unknown; answer: string | null }>(
      `SELECT prompt, answer FROM request_events WHERE route = $1 ORDER BY id`,
      [route],
    );
    return rows;
  }

  async function ask(route: string, content: string) {
    await router.complete(route, { key: 'user-1', messages: [{ role: 'user', content }] });
    await new Promise((r) => setTimeout(r, 100)); // the event writer flushes every 10 ms
  }

  it('captures by default only while a route is under rollout, with personal data masked', async () => {
    await stack.createRoute('quiet', 'openai:gpt-4o');
    await stack.createRoute('always-captured', 'openai:gpt-4o');
    // New routes reach the router by NOTIFY (or its poll), a moment after they are created.
    for (const name of ['quiet', 'always-captured']) {
      const deadline = Date.now() + 5_000;
      while (!router.state(name) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    }
    await ask('quiet', 'Mail me at jane.doe@example.com or call +1 415 555 0100');
    await ask('always-captured', 'hello there');
    // Now a rollout owns the route: its requests are captured.
    await changeRoute(stack.db.pool, 'quiet', {
      expectedVersion: (await getRoute(stack.db.pool, 'quiet'))!.version,
      patch: {
        owner: 'rollout-quiet',
        canaryBps: 500,
        green: { target: { provider: 'openai', model: 'gpt-4o-mini' }, fallbacks: [] },
      },
      actor: 'test',
      reason: 'rollout starts',
    });
    await new Promise((r) => setTimeout(r, 400)); // the router's cache notices
    await ask('quiet', 'Mail me at jane.doe@example.com or call +1 415 555 0100');

    const quiet = await captured('quiet');
    expect(quiet).toHaveLength(2);
    expect(quiet[0]).toEqual({ prompt: null, answer: null });
    expect(quiet[1].prompt).toEqual([{ role: 'user', content: 'Mail me at [email] or call [number]' }]);
    expect(quiet[1].answer).toBeTruthy();
    expect((await captured('always-captured'))[0].answer).toBeTruthy();
  });

  it('deletes captured text older than the retention when the cleanup runs; the events stay', async () => {
    const route = 'retained';
    await stack.createRoute(route, 'openai:gpt-4o');
    // Events are partitioned by day: the days of these back-dated rows are created first (the event writer
    // does that by itself for a day it finds missing).
    await ensureEventPartitions(stack.db.pool, Date.now() - 9 * 86_400_000, Date.now());
    await stack.db.pool.query(
      `INSERT INTO request_events (request_id, route, tag, target, latency_ms, prompt, answer, quality_score, created_at)
       VALUES ('old-1', $1, 'stable', 'openai:gpt-4o', 12, '[{"role":"user","content":"old question"}]', 'old answer', 4, now() - interval '8 days'),
              ('old-2', $1, 'canary', 'openai:gpt-4o', 15, '[{"role":"user","content":"old question"}]', 'old answer', 5, now() - interval '7 days 1 hour'),
              ('new-1', $1, 'stable', 'openai:gpt-4o', 11, '[{"role":"user","content":"new question"}]', 'new answer', NULL, now() - interval '6 days')`,
      [route],
    );
    // What the schedule runs (a real workflow on the real server, with the real activity).
    const purged = await stack.client.workflow.execute(captureRetentionWorkflow, {
      taskQueue: stack.env.taskQueue,
      workflowId: `retention-test-${Date.now()}`,
      args: [{ retentionMs: 7 * 24 * 3600_000 }],
    });
    expect(purged.events).toBeGreaterThanOrEqual(2);
    const { rows } = await stack.db.pool.query(
      `SELECT request_id, prompt, answer, quality_score, latency_ms FROM request_events WHERE route = $1 ORDER BY request_id`,
      [route],
    );
    expect(rows).toEqual([
      {
        request_id: 'new-1',
        prompt: [{ role: 'user', content: 'new question' }],
        answer: 'new answer',
        quality_score: null,
        latency_ms: 11,
      },
      { request_id: 'old-1', prompt: null, answer: null, quality_score: 4, latency_ms: 12 },
      { request_id: 'old-2', prompt: null, answer: null, quality_score: 5, latency_ms: 15 },
    ]);
  });

  it('the worker keeps a Temporal Schedule for the retention, and a second worker updates it', async () => {
    // A schedule of this test's own: the workers other test files start keep the default one, each
    // pointing it at its own task queue, on the same server.
    const scheduleId = `${RETENTION_SCHEDULE_ID}-${stack.env.taskQueue}`;
    await ensureRetentionSchedule(stack.client, {
      retentionMs: 7 * 24 * 3600_000,
      taskQueue: stack.env.taskQueue,
      scheduleId,
    });
    await ensureRetentionSchedule(stack.client, {
      retentionMs: 2 * 24 * 3600_000,
      every: '30m',
      taskQueue: stack.env.taskQueue,
      scheduleId,
    });
    const handle = stack.client.schedule.getHandle(scheduleId);
    const described = await handle.describe();
    expect(described.action).toMatchObject({
      workflowType: 'eventRetentionWorkflow',
      args: [{ retentionMs: 2 * 24 * 3600_000, eventRetentionMs: 30 * 24 * 3600_000, partitionsAhead: 7 }],
    });
    expect(described.spec.intervals?.[0].every).toBe(30 * 60_000);
    // It really runs the cleanup: trigger it now and see a run of the workflow complete.
    await handle.trigger();
    for (let i = 0; ; i++) {
      const d = await handle.describe();
      if (d.info.recentActions.length > 0) break;
      if (i > 100) throw new Error('the schedule never ran');
      await new Promise((r) => setTimeout(r, 200));
    }
    const run = (await handle.describe()).info.recentActions[0].action.workflow;
    const result = await stack.client.workflow.getHandle(run.workflowId, run.firstExecutionRunId).result();
    expect(result).toHaveProperty('events');
    await handle.delete();
  });
});
