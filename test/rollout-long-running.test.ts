import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from '@temporalio/worker';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { rolloutWorkflow } from '../workflows';
import { promoteUpdate, statusQuery, type RolloutStatus } from '../workflows/messages';
import type { RolloutSpecInput } from '../src/decision/config/rollout-spec';
import { DEFAULT_SEQUENTIAL_CONFIG } from '../src/decision/policy';
import { getRoute, listChanges } from '../src/store/routing-state';
import { workflowBundle } from '../src/control-plane/temporal/worker';
import { startTestStack, type TestStack } from './helpers/stack';

const run = promisify(execFile);
const FIXTURES = path.join(__dirname, 'fixtures', 'histories');

/**
 * Rollouts that run long: continue-as-new (the test server suggests it after 120 history events, see
 * test/global-setup.ts), progress deadlines and approval timeouts that end. Real dev server, real Postgres,
 * the simulator behind the real SDKs at provider-like latencies; intervals and deadlines are seconds.
 */
describe('long-running rollouts', () => {
  let stack: TestStack;
  const alertsOf = new Map<string, Array<{ kind: string; title: string }>>();
  const hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const { event } = JSON.parse(body) as { event: { route: string; kind: string; title: string } };
      alertsOf.set(event.route, [...(alertsOf.get(event.route) ?? []), event]);
      res.end('ok');
    });
  });
  const alerts = (route: string) => alertsOf.get(route) ?? [];

  beforeAll(async () => {
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    process.env.ALERT_CHANNELS = JSON.stringify({
      'test-hook': { type: 'slack', url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook` },
    });
    stack = await startTestStack({
      // Hosted-model latencies: a few hundred ms, a tail past a second.
      default: { latencyMs: { median: 350, p99: 1400 }, accuracy: 0.95 },
      models: { 'claude-sonnet-4': { accuracy: 0.95 }, 'gpt-4o': { accuracy: 0.95 } },
    });
  });

  afterAll(async () => {
    await stack?.close();
    hook.close();
    delete process.env.ALERT_CHANNELS;
  });

  function spec(route: string, extra: Partial<RolloutSpecInput> = {}): RolloutSpecInput {
    return {
      route,
      candidate: 'openai:gpt-4o',
      actor: 'test',
      evaluation: { interval: '1s', scoreBatch: 1000 },
      triggers: { interval: '1s', minRequests: 20, minScores: 10 },
      bake: { duration: '2s' },
      alerts: { channels: ['test-hook'] },
      policy: {
        policy: 'sequential',
        sequential: {
          promotion: { minCanaryScoredPerStep: 15, minCanaryRequestsPerStep: 20 },
          finalGate: { toleranceRel: 0.1 },
        },
      },
      ...extra,
    } as RolloutSpecInput;
  }

  async function start(
    route: string,
    s: RolloutSpecInput,
  ): Promise<WorkflowHandleWithFirstExecutionRunId<typeof rolloutWorkflow>> {
    return stack.client.workflow.start(rolloutWorkflow, {
      taskQueue: stack.env.taskQueue,
      workflowId: `rollout-${route}`,
      args: [s],
    });
  }

  async function waitFor(
    handle: WorkflowHandle,
    what: (s: RolloutStatus) => boolean,
    timeoutMs = 90_000,
  ): Promise<RolloutStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await handle.query(statusQuery);
      if (what(status)) return status;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out; last status: ${JSON.stringify({ phase: status.phase, share: status.shareBps, generation: status.generation, last: status.decisions.at(-1) })}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Replays a run's history against the current code; with RECORD_HISTORIES=1 also keeps it as a fixture. */
  async function saveHistory(workflowId: string, runId: string | undefined, name: string): Promise<void> {
    const history = await stack.client.workflow.getHandle(workflowId, runId).fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowId);
    if (process.env.RECORD_HISTORIES) {
      fs.mkdirSync(FIXTURES, { recursive: true });
      fs.writeFileSync(path.join(FIXTURES, `${name}.json`), historyToJSON(history));
    }
  }

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
    await saveHistory(workflowId, handle.firstExecutionRunId, 'shadow-canary-continued-first-run');
    await saveHistory(workflowId, undefined, 'shadow-canary-continued-last-run');
  }, 240_000);

  it('holds a step past its progress deadline and alerts, until a person promotes it', async () => {
    const route = 'deadline-hold';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 60);
    // A 0.5% tolerance at the final gate needs far more judged answers than the test gives: the step holds.
    const handle = await start(
      route,
      spec(route, {
        canary: { steps: [5000, 10000] },
        progressDeadline: { step: '5s', rollout: '1h', action: 'hold' },
        policy: {
          policy: 'sequential',
          sequential: {
            promotion: { minCanaryScoredPerStep: 15, minCanaryRequestsPerStep: 20 },
            finalGate: { toleranceRel: 0.005 },
          },
        },
      }),
    );
    const held = await waitFor(handle, (s) => s.deadline !== undefined);
    expect(held.deadline).toMatchObject({ kind: 'step', action: 'hold', holding: true });
    expect(held.paused).toBe(true);
    expect(held.shareBps).toBe(5000);
    expect(held.decisions.at(-1)).toMatchObject({ policy: 'progress-deadline', action: 'hold' });
    expect(held.decisions.at(-1)!.reasons[0]).toMatch(
      /^progress deadline passed: the step at 50% has not advanced in \d+s \(progressDeadline.step 5s\)$/,
    );
    await waitFor(handle, () => alerts(route).some((a) => a.kind === 'deadline'), 30_000);
    expect(alerts(route).find((a) => a.kind === 'deadline')!.title).toMatch(
      new RegExp(`^Rollout of openai:gpt-4o on ${route} held at 50%: the step at 50% has not advanced`),
    );
    // It keeps holding: checks go on, the share does not move, and the deadline does not fire again.
    await new Promise((r) => setTimeout(r, 4_000));
    const still = await handle.query(statusQuery);
    expect(still.shareBps).toBe(5000);
    expect(still.decisions.length).toBeGreaterThan(held.decisions.length);
    expect(still.decisionSummary?.byPolicy['progress-deadline']).toBe(1);
    expect((await getRoute(stack.db.pool, route))!.canaryBps).toBe(5000);

    // A person acts: the promote ends the hold.
    const promoted = await handle.executeUpdate(promoteUpdate, { args: [{ actor: 'release-manager' }] });
    expect(promoted.deadline?.holding).toBe(false);
    const outcome = await handle.result();
    await traffic.stop();
    expect(outcome.result).toBe('completed');
    const status = await handle.query(statusQuery);
    expect(status.steps.at(-1)).toMatchObject({ toBps: 10000, by: 'release-manager' });
    await saveHistory(handle.workflowId, undefined, 'canary-deadline-held-promoted');
  }, 150_000);

  it('rolls back a rollout past its progress deadline when the spec says so', async () => {
    const route = 'deadline-rollback';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 60);
    const handle = await start(
      route,
      spec(route, { progressDeadline: { step: '1h', rollout: '6s', action: 'rollback' } }),
    );
    const outcome = await handle.result();
    await traffic.stop();
    expect(outcome.result).toBe('rolled_back');
    expect(outcome.reason).toMatch(
      /^progress deadline passed: not promoted \d+s after it started \(progressDeadline.rollout 6s\) \(by progress-deadline\)$/,
    );
    expect(outcome.evidence).toMatchObject({ deadline: 'rollout', deadlineMs: 6000 });
    expect(await getRoute(stack.db.pool, route)).toMatchObject({
      stableSlot: 'blue',
      canaryBps: 0,
      owner: null,
    });
    const last = await stack.db.pool.query(
      `SELECT action, policy FROM rollout_decisions WHERE route = $1 ORDER BY id DESC LIMIT 1`,
      [route],
    );
    expect(last.rows[0]).toEqual({ action: 'rollback', policy: 'progress-deadline' });
    expect(alerts(route).map((a) => a.kind)).toContain('rollback');
    await saveHistory(handle.workflowId, undefined, 'canary-deadline-rolled-back');
  }, 120_000);

  it('an approval timeout ends: the spec says approve, so it promotes and says so', async () => {
    const route = 'approval-timeout-approve';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const handle = await start(
      route,
      spec(route, {
        strategy: 'blue-green',
        approval: { required: true, timeout: '3s', onTimeout: 'approve' },
      }),
    );
    const outcome = await handle.result();
    expect(outcome.result).toBe('completed');
    const status = await handle.query(statusQuery);
    expect(status.deadline).toMatchObject({ kind: 'approval', action: 'approve' });
    expect(status.steps.at(-1)).toMatchObject({ toBps: 10000 });
    expect(await getRoute(stack.db.pool, route)).toMatchObject({ stableSlot: 'green', owner: null });
    const kinds = alerts(route).map((a) => a.kind);
    expect([...kinds].sort()).toEqual(['approval-needed', 'completed', 'deadline', 'promotion']);
    expect(kinds.at(-1)).toBe('completed');
    expect(alerts(route).find((a) => a.kind === 'deadline')!.title).toMatch(
      /: no approval within 3s; promoting it as approval.onTimeout says$/,
    );
    await saveHistory(handle.workflowId, undefined, 'blue-green-approval-timeout-approved');
  }, 60_000);

  it('refuses a spec whose approval would wait forever, naming the field', async () => {
    const handle = await stack.client.workflow.start(rolloutWorkflow, {
      taskQueue: stack.env.taskQueue,
      workflowId: 'rollout-approval-forever',
      args: [{ route: 'x', candidate: 'openai:gpt-4o', approval: { required: true, onTimeout: 'hold' } }],
    });
    const err = await handle.result().catch((e: Error & { cause?: Error }) => e);
    expect(String((err as Error & { cause?: Error }).cause?.message)).toMatch(
      /approval\.onTimeout: 'hold' waited for an approval forever/,
    );
  }, 30_000);
});
