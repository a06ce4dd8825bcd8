import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusQuery } from '../workflows/messages';
import { DEFAULT_SEQUENTIAL_CONFIG } from '../src/decision/policy';
import { getRoute, listChanges } from '../src/store/routing-state';
import { startTestStack, type TestStack } from './helpers/stack';
import {
  rolloutSpec,
  saveHistory,
  startAlertHook,
  startRollout,
  waitForStatus,
  type AlertHook,
} from './helpers/rollout';

const run = promisify(execFile);

/**
 * A rollout that runs long, end to end: continue-as-new (the test server suggests it after 120 history
 * events, see test/global-setup.ts) through a shadow phase and a canary on served traffic, with the route,
 * the audit table, `status` and `list` telling one story. Real dev server, real Postgres, the simulator
 * behind the real SDKs at provider-like latencies. Deadlines and approval timeouts (at their real values
 * too) are in the fast layer, rollout-stories.test.ts.
 */
describe('long-running rollouts', () => {
  let stack: TestStack;
  let hook: AlertHook;
  const alerts = (route: string) => hook.alertsOf(route);

  beforeAll(async () => {
    hook = await startAlertHook();
    process.env.ALERT_CHANNELS = JSON.stringify(hook.channels);
    stack = await startTestStack({
      // Hosted-model latencies: a few hundred ms, a tail past a second.
      default: { latencyMs: { median: 350, p99: 1400 }, accuracy: 0.95 },
      models: { 'claude-sonnet-4': { accuracy: 0.95 }, 'gpt-4o': { accuracy: 0.95 } },
    });
  });

  afterAll(async () => {
    await stack?.close();
    await hook?.close();
    delete process.env.ALERT_CHANNELS;
  });

  const spec = (route: string, extra: Parameters<typeof rolloutSpec>[1] = {}) =>
    rolloutSpec(route, { alerts: { channels: ['test-hook'] }, ...extra });
  const start = (route: string, s: ReturnType<typeof spec>) =>
    startRollout(stack.client, stack.env.taskQueue, route, s);
  const waitFor = waitForStatus;

  it('continues as new through a shadow phase and a canary, keeping its share, steps, decisions and owner, and completes', async () => {
    const route = 'continued-canary';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 60);
    const handle = await start(
      route,
      spec(route, {
        shadow: { enabled: true, rate: 0.5, minComparisons: 40, maxDuration: '30s', require: 'none' },
        canary: { steps: [1000, 5000, 10000] },
      }),
    );
    const workflowId = handle.workflowId;

    // While it runs in a later run, the route is still claimed by the rollout and serves the share it had.
    const continued = await waitFor(handle, (s) => (s.generation ?? 0) >= 1 && s.phase === 'canary', 150_000);
    const description = await handle.describe();
    expect(description.runId).not.toBe(handle.firstExecutionRunId);
    expect(continued.firstRunId).toBe(handle.firstExecutionRunId);
    const state = await getRoute(stack.db.pool, route);
    expect(state).toMatchObject({ owner: workflowId, canaryBps: continued.shareBps });
    // The policy config it decides on was resolved in full when it started and came along.
    expect(continued.policy).toMatchObject({
      policy: 'sequential',
      sequential: {
        alpha: DEFAULT_SEQUENTIAL_CONFIG.alpha,
        promotion: { minCanaryScoredPerStep: 15, minCanaryRequestsPerStep: 20 },
        finalGate: { ...DEFAULT_SEQUENTIAL_CONFIG.finalGate, toleranceRel: 0.1 },
      },
    });

    const outcome = await handle.result(); // follows the runs to the last one
    await traffic.stop();
    expect(outcome.result).toBe('completed');
    expect(outcome.stable).toBe('openai:gpt-4o');
    const status = await handle.query(statusQuery);
    expect(status.generation).toBeGreaterThanOrEqual(1);
    expect(status.shadow?.comparisons).toBeGreaterThan(0);
    // One story across the runs: every step once, in order, from the first run on.
    expect(status.steps.map((s) => s.toBps)).toEqual([1000, 5000, 10000]);
    expect(status.startedAt).toBe(continued.startedAt);
    // Every decision of every run is counted in status, and each is in the audit table once.
    const decisions = await stack.db.pool.query<{ run_id: string; policy: string }>(
      `SELECT run_id, policy FROM rollout_decisions WHERE route = $1 ORDER BY id`,
      [route],
    );
    expect(status.decisionSummary?.total).toBe(decisions.rows.length);
    // Decisions came from more than one run (a run that only baked records none).
    const runs = new Set(decisions.rows.map((r) => r.run_id)).size;
    expect(runs).toBeGreaterThanOrEqual(2);
    expect(runs).toBeLessThanOrEqual(status.generation! + 1);
    expect(new Set(decisions.rows.map((r) => r.policy))).toEqual(new Set(['shadow-sign-test', 'sequential']));
    // Each routing change happened once: idempotency keys stay unique across runs, and none was repeated.
    const changes = (await listChanges(stack.db.pool, route, 100)).map((c) => c.reason);
    expect(changes.filter((r) => /canary share/.test(r ?? ''))).toHaveLength(2);
    expect(changes.filter((r) => /promote .* to stable/.test(r ?? ''))).toHaveLength(1);
    expect(changes.filter((r) => /shadow phase over/.test(r ?? ''))).toHaveLength(1);
    expect(await getRoute(stack.db.pool, route)).toMatchObject({ stableSlot: 'green', owner: null });
    expect(alerts(route).map((a) => a.kind)).toEqual(['promotion', 'completed']);

    // The UI's current details and `model-rollout status` tell the same continued story.
    const metadata = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
    expect(metadata.currentDetails).toMatch(
      /run \d+ of this rollout \(continued as new; \d+ decisions in all\)/,
    );
    const bin = path.join(__dirname, '..', 'bin', 'model-rollout.js');
    const cliEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: stack.env.address,
      TEMPORAL_NAMESPACE: stack.env.namespace,
      TEMPORAL_TASK_QUEUE: stack.env.taskQueue,
      NO_COLOR: '1',
    };
    const { stdout } = await run(process.execPath, [bin, 'status', route], { env: cliEnv });
    expect(stdout).toMatch(/runs +\d+ \(continued as new \d+x; first run /);
    expect(stdout).toMatch(new RegExp(`^decisions +${decisions.rows.length} in all: `, 'm'));
    // `list` shows the rollout once (its latest run), not once per run.
    const listed = await run(process.execPath, [bin, 'list', '--route', route, '--json'], { env: cliEnv });
    expect(JSON.parse(listed.stdout)).toMatchObject([{ workflowId, status: 'COMPLETED' }]);

    // The first run (shadow phase, canary start, continue-as-new) and the last (to completion).
    await saveHistory(stack.client, workflowId, handle.firstExecutionRunId);
    await saveHistory(stack.client, workflowId, undefined);
  }, 240_000);
});
