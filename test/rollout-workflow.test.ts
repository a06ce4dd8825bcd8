import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { rolloutWorkflow } from '../workflows';
import { pauseSignal, promoteSignal, resumeSignal, rollbackUpdate, statusQuery } from '../workflows/messages';
import type { RolloutSpecInput } from '../src/decision/config/rollout-spec';
import { getRoute, listChanges } from '../src/store/routing-state';
import { startTestStack, type TestStack } from './helpers/stack';
import {
  rolloutSpec,
  saveHistory as replays,
  startAlertHook,
  startRollout,
  waitForStatus,
  type AlertHook,
} from './helpers/rollout';

const run = promisify(execFile);

/**
 * The rollout workflow end to end: real dev server, real Postgres, the simulator behind the real SDKs, a
 * router serving live traffic whose answers are graded against the reference set. Intervals are seconds.
 * What it shows needs the real components (statistics from served traffic, the router seeing a change,
 * the CLIs); the story's other branches run with scripted activities in rollout-stories.test.ts.
 */
describe('rolloutWorkflow', () => {
  let stack: TestStack;

  let hook: AlertHook;
  const alertsOf = { get: (route: string) => hook.alertsOf(route) };

  beforeAll(async () => {
    hook = await startAlertHook();
    // Channels live on the worker (specs name them): this file's worker reads them from its environment.
    process.env.ALERT_CHANNELS = JSON.stringify(hook.channels);
    stack = await startTestStack({
      // Latencies of real models (hundreds of ms): a millisecond of SDK or event-loop overhead on one arm must
      // not read as a slower candidate, as it did when answers took 2 ms.
      default: { latencyMs: { median: 250, p99: 800 }, accuracy: 0.95 },
      models: {
        'claude-sonnet-4': { accuracy: 0.95 },
        'gpt-4o': { accuracy: 0.95 },
        // 10 points of accuracy worse: mean score 4.4 instead of 4.8 on the 1-5 scale.
        'gpt-4o-mini': { accuracy: 0.85 },
        'broken-model': { accuracy: 0.95, errorRate: 1, errorKinds: { server_error: 1 } },
      },
    });
  });

  afterAll(async () => {
    await stack?.close();
    await hook?.close();
    delete process.env.ALERT_CHANNELS;
  });

  const spec = (route: string, candidate: string, extra: Partial<RolloutSpecInput> = {}) =>
    rolloutSpec(route, { candidate, ...extra });
  const start = (route: string, s: RolloutSpecInput): Promise<WorkflowHandle<typeof rolloutWorkflow>> =>
    startRollout(stack.client, stack.env.taskQueue, route, s);
  const waitFor = waitForStatus;
  const saveHistory = (handle: WorkflowHandle) => replays(stack.client, handle.workflowId, undefined);

  it('promotes a candidate as good as stable through every step, then bakes and completes', async () => {
    const route = 'good-canary';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 100);
    const handle = await start(route, spec(route, 'openai:gpt-4o'));
    await waitFor(handle, (s) => s.outcome !== undefined, 170_000);
    const outcome = await handle.result();
    await traffic.stop();
    expect(outcome.result).toBe('completed');
    expect(outcome.stable).toBe('openai:gpt-4o');
    const status = await handle.query(statusQuery);
    expect(status.steps.map((s) => s.toBps)).toEqual([500, 1000, 2000, 4000, 8000, 10000]);
    const state = await getRoute(stack.db.pool, route);
    expect(state).toMatchObject({ stableSlot: 'green', canaryBps: 0, owner: null });
    expect(state!.green!.target).toEqual({ provider: 'openai', model: 'gpt-4o' });
    // Served traffic really moved: the candidate answered canary requests before it became stable.
    expect(traffic.stats().byTarget['openai:gpt-4o']).toBeGreaterThan(0);
    // Each step is cut by routing version: the decision at 80% weighed five steps, each at its own split.
    const last = await stack.db.pool.query(
      `SELECT stats FROM rollout_decisions WHERE route = $1 AND phase = 'canary' ORDER BY id DESC LIMIT 1`,
      [route],
    );
    expect(last.rows[0].stats).toMatchObject({ shareBps: 8000, 'errors.segments': 5, 'slow.segments': 5 });
    await saveHistory(handle);
  }, 180_000);

  it('rolls back a candidate 10% worse in accuracy before it reaches 100%', async () => {
    const route = 'bad-canary';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 100);
    const handle = await start(
      route,
      spec(route, 'openai:gpt-4o-mini', { canary: { steps: [2000, 4000, 8000, 10000] } }),
    );
    const outcome = await handle.result();
    await traffic.stop();
    expect(outcome.result).toBe('rolled_back');
    expect(outcome.reason).toMatch(/canary policy \(sequential\)/);
    expect(outcome.finalShareBps).toBe(0);
    const status = await handle.query(statusQuery);
    expect(Math.max(...status.steps.map((s) => s.toBps))).toBeLessThan(10000);
    expect(await getRoute(stack.db.pool, route)).toMatchObject({
      stableSlot: 'blue',
      canaryBps: 0,
      owner: null,
    });
    const decisions = await stack.db.pool.query(
      `SELECT action FROM rollout_decisions WHERE route = $1 ORDER BY id`,
      [route],
    );
    expect(decisions.rows.at(-1)).toEqual({ action: 'rollback' });
    await saveHistory(handle);
  }, 180_000);

  it('while the final gate holds, the status query, the current details and `model-rollout status` say what it waits for and how long', async () => {
    const route = 'held-canary';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 100);
    const alerts = () => alertsOf.get(route) ?? [];
    // One step before 100%, so the final gate applies at once; a 0.5% tolerance needs far more judged
    // answers than the test runs for, so the share stays held.
    const handle = await start(
      route,
      spec(route, 'openai:gpt-4o', {
        canary: { steps: [5000, 10000] },
        alerts: { channels: ['test-hook'], holdAfter: '3s' },
        policy: {
          policy: 'sequential',
          sequential: {
            promotion: { minCanaryScoredPerStep: 15, minCanaryRequestsPerStep: 20 },
            finalGate: { toleranceRel: 0.005 },
          },
        },
      }),
    );
    const status = await waitFor(
      handle,
      (s) => s.hold?.estimate?.binding.condition === 'final gate (quality)' && s.decisions.length >= 3,
      90_000,
    );
    const hold = status.hold!;
    expect(hold.shareBps).toBe(5000);
    expect(hold.estimate!.summary).toMatch(
      /^final gate \(quality\): about [\d ]+ more judged canary answers to show the candidate within 0\.5% of stable; expected in about \S+( \S+)? at the current [\d.]+ judged canary answers\/min$/,
    );
    expect(hold.estimate!.binding.more).toBeGreaterThan(100);
    expect(Date.parse(hold.expectedAt!)).toBeGreaterThan(Date.parse(hold.since));
    expect(status.decisions.at(-1)!.action).toBe('hold');

    // The UI's current details (the workflow metadata query) carry the same sentence.
    const metadata = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
    expect(metadata.currentDetails).toMatch(
      /held since .*: final gate \(quality\): about [\d ]+ more judged canary answers/,
    );

    // The operator's view: the real CLI binary against the same server.
    const bin = path.join(__dirname, '..', 'bin', 'model-rollout.js');
    const { stdout } = await run(process.execPath, [bin, 'status', route], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: stack.env.address,
        TEMPORAL_NAMESPACE: stack.env.namespace,
        TEMPORAL_TASK_QUEUE: stack.env.taskQueue,
        NO_COLOR: '1',
      },
    });
    expect(stdout).toMatch(/^hold {2}held at 50% since .* \(\d+s ago\)$/m);
    expect(stdout).toMatch(
      /^ {2}final gate \(quality\): about [\d ]+ more judged canary answers to show the candidate within 0\.5% of stable; expected in about .* judged canary answers\/min$/m,
    );
    expect(stdout).toMatch(/^ {2}expected to advance around \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/m);

    // A hold that lasts past alerts.holdAfter is announced once, with what it waits for.
    await waitFor(handle, () => alerts().some((a) => a.kind === 'hold'), 30_000);
    const holdAlerts = alerts().filter((a) => a.kind === 'hold');
    expect(holdAlerts).toHaveLength(1);
    expect(holdAlerts[0].title).toMatch(
      new RegExp(
        `^Rollout of openai:gpt-4o on ${route} held at 50% for \\d+s: final gate \\(quality\\): about`,
      ),
    );

    await handle.executeUpdate(rollbackUpdate, { args: [{ reason: 'test over', actor: 'test' }] });
    await traffic.stop();
    expect(alerts().filter((a) => a.kind === 'hold')).toHaveLength(1);
    expect((await handle.query(statusQuery)).hold).toBeUndefined();
    await saveHistory(handle);
  }, 150_000);

  it('fires the error-rate trigger on a failing candidate and rolls back at once', async () => {
    const route = 'broken-canary';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 100);
    // The ratio policy looks at quality only, so the trigger is what must catch this.
    const handle = await start(
      route,
      spec(route, 'openai:broken-model', { canary: { steps: [2000, 10000] }, policy: { policy: 'ratio' } }),
    );
    const outcome = await handle.result();
    await traffic.stop();
    expect(outcome.result).toBe('rolled_back');
    expect(outcome.reason).toMatch(/trigger fired: error_rate/);
    expect(await getRoute(stack.db.pool, route)).toMatchObject({ stableSlot: 'blue', canaryBps: 0 });
  }, 120_000);

  it('holds the share while paused, resumes, skips a step on promote, and rolls back by hand within a second', async () => {
    const route = 'manual-canary';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 50);
    const handle = await start(route, spec(route, 'openai:gpt-4o'));
    await waitFor(handle, (s) => s.phase === 'canary' && s.shareBps === 500);
    await handle.signal(pauseSignal, { actor: 'test', reason: 'look at it' });
    const paused = await waitFor(handle, (s) => s.paused);
    // Several ticks later the share has not moved.
    await new Promise((r) => setTimeout(r, 4_000));
    const still = await handle.query(statusQuery);
    expect(still.shareBps).toBe(paused.shareBps);
    expect(still.decisions.length).toBeGreaterThan(paused.decisions.length);

    await handle.signal(resumeSignal, { actor: 'test' });
    await handle.signal(promoteSignal, { actor: 'test' });
    const promoted = await waitFor(handle, (s) => s.steps.some((st) => st.by === 'test'));
    const manualStep = promoted.steps.find((st) => st.by === 'test')!;
    expect(manualStep.toBps).toBeGreaterThan(manualStep.fromBps);

    const t0 = Date.now();
    const outcome = await handle.executeUpdate(rollbackUpdate, {
      args: [{ reason: 'operator saw bad answers', actor: 'test' }],
    });
    const elapsed = Date.now() - t0;
    expect(outcome.result).toBe('rolled_back');
    expect(elapsed).toBeLessThan(1_000);
    expect(await getRoute(stack.db.pool, route)).toMatchObject({
      stableSlot: 'blue',
      canaryBps: 0,
      owner: null,
    });
    // The router serving traffic sees it too: after the change no new canary answers.
    await new Promise((r) => setTimeout(r, 500));
    traffic.reset();
    await new Promise((r) => setTimeout(r, 1_000));
    expect(traffic.stats().byTag.canary ?? 0).toBe(0);
    await traffic.stop();
    const changes = await listChanges(stack.db.pool, route, 50);
    expect(changes[0].reason).toMatch(/operator saw bad answers/);
    // Search attributes are upserted when they change (phase, share), not at every decision: a rollout that
    // checks every 5 minutes for days must not fill its history with copies of the same values.
    const events = (await handle.fetchHistory()).events ?? [];
    const upserts = events.filter(
      (e) => e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.RolloutPhase,
    ).length;
    // Every publish would be at least 11 here (claim, phase, 2 steps, 3+ decisions, pause, resume,
    // rollback); only changes: starting, step 1 (canary), 5%, step 2, 10% (promote), rolled_back.
    expect(upserts).toBeLessThanOrEqual(7);
    await saveHistory(handle);
  }, 120_000);

  it('takes a rollback signal sent by the temporal CLI binary', async () => {
    const route = 'cli-signal';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const handle = await start(route, spec(route, 'openai:gpt-4o', { evaluation: { interval: '1h' } }));
    await waitFor(handle, (s) => s.phase === 'canary');
    await run(stack.env.cliPath!, [
      'workflow',
      'signal',
      '--address',
      stack.env.address,
      '--namespace',
      stack.env.namespace,
      '--workflow-id',
      handle.workflowId,
      '--name',
      'rollback',
      '--input',
      '{"reason":"sent from the temporal CLI"}',
    ]);
    const outcome = await handle.result();
    expect(outcome.result).toBe('rolled_back');
    expect(outcome.reason).toMatch(/sent from the temporal CLI/);
  }, 60_000);

  it('refuses an invalid spec inside the workflow with a non-retryable error naming the field', async () => {
    const handle = await stack.client.workflow.start(rolloutWorkflow, {
      taskQueue: stack.env.taskQueue,
      workflowId: 'rollout-invalid',
      args: [{ route: 'x', candidate: 'gpt4' }],
    });
    await expect(handle.result()).rejects.toThrow();
    const err = await handle.result().catch((e: Error & { cause?: Error }) => e);
    expect(String((err as Error & { cause?: Error }).cause?.message)).toMatch(/candidate\.target/);
  }, 30_000);
});
