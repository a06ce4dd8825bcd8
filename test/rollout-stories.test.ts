/**
 * The fast workflow layer: every branch of a rollout's story, run by the real workflow on the real Temporal
 * dev server, with scripted activities (statistics from a table, routing in memory; the real alert
 * activity posting to a local hook). Intervals are 100 ms, so a whole rollout takes a second or two; the
 * dev server suggests continue-as-new after 120 events (test/global-setup.ts), so most stories also cross
 * runs. The real day-long defaults (24 h step deadline, 7 d rollout deadline, 24 h approval timeout) are
 * exercised at their real values by starting a rollout from the state a week-old rollout hands to its next
 * run. The stories run concurrently (each on its own route). What needs Postgres, the simulator and a
 * router is in rollout-workflow.test.ts and the others.
 *
 * Temporal's time-skipping test server (TestWorkflowEnvironment.createTimeSkipping) is not used: it
 * downloads a native binary from a host this machine cannot reach, and no registry reachable here ships it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { parseAlertChannels } from '../src/control-plane/alerts/channels';
import { parseRolloutSpec, type RolloutSpecInput } from '../src/decision/config/rollout-spec';
import type { RunningWorker } from '../src/control-plane/temporal/worker';
import { guardianStatusQuery, routeGuardianWorkflow, watchSignal } from '../workflows/guardian';
import {
  approveUpdate,
  pauseUpdate,
  promoteUpdate,
  resumeUpdate,
  rollbackUpdate,
  statusQuery,
} from '../workflows/messages';
import type { RolloutCarry } from '../workflows/run/carry';
import { rolloutWorkflow } from '../workflows';
import { temporalTestEnv } from './helpers/temporal';
import { arm, scriptedWorld, type ScriptedWorld } from './helpers/scripted-activities';
import {
  saveHistory,
  startAlertHook,
  startRollout,
  until,
  waitForStatus,
  type AlertHook,
} from './helpers/rollout';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe.concurrent('rollout stories (scripted activities, real dev server)', () => {
  const env = temporalTestEnv();
  let client: Client;
  let worker: RunningWorker;
  let world: ScriptedWorld;
  let hook: AlertHook;

  beforeAll(async () => {
    hook = await startAlertHook();
    world = scriptedWorld({ alertChannels: parseAlertChannels(JSON.stringify(hook.channels)) });
    client = await env.client();
    worker = await env.worker(world.activities);
  });
  afterAll(async () => {
    await worker?.shutdown();
    await client?.connection.close();
    await hook?.close();
  });

  /** Checks every 100 ms; the production ladder and policy, sample minimums the table meets. */
  function spec(route: string, extra: Partial<RolloutSpecInput> = {}): RolloutSpecInput {
    return {
      route,
      candidate: 'openai:gpt-4o',
      actor: 'test',
      evaluation: { interval: '100ms' },
      triggers: { interval: '100ms' },
      bake: { duration: '300ms' },
      alerts: { channels: ['test-hook'] },
      policy: { sequential: { finalGate: { toleranceRel: 0.1 } } },
      ...extra,
    } as RolloutSpecInput;
  }
  const start = (route: string, s: RolloutSpecInput, carried?: RolloutCarry) => {
    if (!world.routes.has(route)) world.createRoute(route);
    return startRollout(client, env.taskQueue, route, s, carried);
  };
  const kinds = (route: string) => hook.alertsOf(route).map((a) => a.kind);
  /** A step the policy holds: too few judged canary answers for the step minimum. */
  const holding = () => ({ stable: arm(2000, 4.8), canary: arm(20, 4.8) });

  it('promotes an equal candidate through the default ladder, bakes, completes and hands the route to its guardian', async () => {
    const route = 'story-promoted';
    const handle = await start(route, spec(route));
    const outcome = await handle.result();
    expect(outcome).toMatchObject({ result: 'completed', stable: 'openai:gpt-4o', finalShareBps: 10_000 });
    expect(outcome.reason).toBe('openai:gpt-4o promoted to 100% and baked for 300ms');
    const status = await handle.query(statusQuery);
    expect(status.steps.map((s) => s.toBps)).toEqual([500, 1000, 2000, 4000, 8000, 10_000]);
    expect(status.plan.map((p) => p.kind)).toEqual([...Array(6).fill('setShare'), 'bake']);
    expect(world.routes.get(route)).toMatchObject({ stableSlot: 'green', canaryBps: 0, owner: null });
    expect(world.guardians.filter((g) => g.route === route)).toHaveLength(1);
    expect(kinds(route)).toEqual(['promotion', 'completed']);
    // Each change of share happened once, across runs.
    const shares = world.routes
      .get(route)!
      .changes.flatMap((c) => (c.patch.canaryBps ? [c.patch.canaryBps] : []));
    expect(shares).toEqual([500, 1000, 2000, 4000, 8000]);
    await saveHistory(client, handle.workflowId, undefined, 'canary-promoted');
  }, 60_000);

  it('rolls back a worse candidate by the policy, and restores the stable slot', async () => {
    const route = 'story-policy';
    world.scripts.set(route, {
      step: (share) => ({ stable: arm(20_000, 4.8), canary: arm(40 * share, 3.8) }),
    });
    const handle = await start(route, spec(route));
    const outcome = await handle.result();
    expect(outcome.result).toBe('rolled_back');
    expect(outcome.reason).toMatch(/^canary policy \(sequential\): quality/);
    expect(world.routes.get(route)).toMatchObject({ stableSlot: 'blue', canaryBps: 0, owner: null });
    expect(kinds(route)).toEqual(['rollback']);
    await saveHistory(client, handle.workflowId, undefined, 'canary-rolled-back-by-policy');
  }, 60_000);

  it('rolls back at once when a trigger fires on the canary', async () => {
    const route = 'story-trigger';
    world.scripts.set(route, {
      triggers: ({ tag }) => (tag === 'canary' ? arm(200, 4.8, { errors: 200 }) : arm(0, null)),
    });
    const handle = await start(route, spec(route, { policy: { policy: 'ratio' } }));
    const outcome = await handle.result();
    expect(outcome.result).toBe('rolled_back');
    expect(outcome.reason).toMatch(/^trigger fired: error_rate/);
    expect(outcome.finalShareBps).toBe(0);
    expect(kinds(route)).toEqual(expect.arrayContaining(['trigger', 'rollback']));
    await saveHistory(client, handle.workflowId, undefined, 'canary-rolled-back-by-trigger');
  }, 60_000);

  it('by hand: pause holds the share, resume and promote move it, a rollback Update answers with the outcome', async () => {
    const route = 'story-manual';
    world.scripts.set(route, { step: holding });
    const handle = await start(route, spec(route));
    await waitForStatus(handle, (s) => s.shareBps === 500 && s.decisions.length >= 2);
    const paused = await handle.executeUpdate(pauseUpdate, { args: [{ actor: 'ops', reason: 'look' }] });
    expect(paused.paused).toBe(true);
    const resumed = await handle.executeUpdate(resumeUpdate, { args: [{ actor: 'ops' }] });
    expect(resumed.paused).toBe(false);
    const promoted = await handle.executeUpdate(promoteUpdate, { args: [{ actor: 'ops' }] });
    expect(promoted.shareBps).toBe(1000);
    expect(promoted.steps.at(-1)).toMatchObject({ fromBps: 500, toBps: 1000, by: 'ops' });
    expect(promoted.step).toMatchObject({ index: 1, kind: 'setShare', share: 1000 });
    const outcome = await handle.executeUpdate(rollbackUpdate, {
      args: [{ reason: 'bad answers', actor: 'ops' }],
    });
    expect(outcome).toMatchObject({ result: 'rolled_back', reason: 'bad answers (by ops)' });
    expect(world.routes.get(route)).toMatchObject({ stableSlot: 'blue', canaryBps: 0, owner: null });
    await until(() => kinds(route).includes('rollback'), 'the rollback alert', 10_000);
    expect(kinds(route)).toEqual(['pause', 'resume', 'rollback']);
    await saveHistory(client, handle.workflowId, undefined, 'manual-pause-promote-rollback');
  }, 60_000);

  it('shadow only: compares in pairs and ends with its report, leaving the route as it was', async () => {
    const route = 'story-shadow';
    const handle = await start(
      route,
      spec(route, { strategy: 'shadow-only', shadow: { rate: 0.5, minComparisons: 30 } }),
    );
    const outcome = await handle.result();
    expect(outcome.result).toBe('shadow-report');
    expect(outcome.shadow?.comparisons).toBeGreaterThanOrEqual(30);
    expect(world.routes.get(route)).toMatchObject({ stableSlot: 'blue', shadowRate: 0, owner: null });
    await saveHistory(client, handle.workflowId, undefined, 'shadow-only-report');
  }, 60_000);

  it('blue-green with approval: a promote is refused with the reason, approve answers once it has switched', async () => {
    const route = 'story-approval';
    const handle = await start(
      route,
      spec(route, { strategy: 'blue-green', approval: { required: true, timeout: '1h' } }),
    );
    const waiting = await waitForStatus(handle, (s) => s.awaitingApproval);
    expect(waiting).toMatchObject({ phase: 'awaiting-approval', step: { index: 0, kind: 'approve' } });
    const refused = await handle.executeUpdate(promoteUpdate, { args: [{ actor: 'eager' }] }).catch((e) => e);
    expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(refused.cause.message).toBe(
      `it waits for approval; approve it with 'model-rollout approve ${route}'`,
    );
    const approved = await handle.executeUpdate(approveUpdate, { args: [{ actor: 'release-manager' }] });
    expect(approved).toMatchObject({ awaitingApproval: false, stable: 'openai:gpt-4o', shareBps: 10_000 });
    expect(approved.steps.at(-1)).toMatchObject({ toBps: 10_000, by: 'release-manager' });
    expect((await handle.result()).result).toBe('completed');
    const late = await handle.executeUpdate(pauseUpdate, { args: [{ actor: 'late' }] }).catch((e) => e);
    expect(String(late.cause?.message ?? late.message)).toMatch(/has ended|not found|completed/);
    expect(kinds(route)).toEqual(['approval-needed', 'promotion', 'completed']);
    await saveHistory(client, handle.workflowId, undefined, 'blue-green-approved');
  }, 60_000);

  it('an approval timeout ends: rollback, or go on as approved, each said', async () => {
    const rolled = 'story-approval-timeout';
    const h1 = await start(
      rolled,
      spec(rolled, { strategy: 'blue-green', approval: { required: true, timeout: '400ms' } }),
    );
    expect(await h1.result()).toMatchObject({
      result: 'rolled_back',
      reason: 'no approval within 400ms (by approval-timeout)',
    });
    await saveHistory(client, h1.workflowId, undefined, 'approval-timeout-rolled-back');

    const approved = 'story-approval-timeout-approve';
    const h2 = await start(
      approved,
      spec(approved, {
        strategy: 'blue-green',
        approval: { required: true, timeout: '400ms', onTimeout: 'approve' },
      }),
    );
    expect((await h2.result()).result).toBe('completed');
    const status = await h2.query(statusQuery);
    expect(status.deadline).toMatchObject({ kind: 'approval', action: 'approve' });
    expect(status.steps.at(-1)).toMatchObject({ toBps: 10_000, by: 'approval-timeout' });
    expect(hook.alertsOf(approved).find((a) => a.kind === 'deadline')?.title).toMatch(
      /no approval within 400ms; going on as onTimeout 'approve' says$/,
    );
  }, 60_000);

  it('a step past its progress deadline holds and alerts once, until a person promotes it', async () => {
    const route = 'story-deadline-hold';
    world.scripts.set(route, { step: holding });
    const handle = await start(
      route,
      spec(route, { canary: { steps: [5000, 10_000] }, progressDeadline: { step: '500ms', rollout: '1h' } }),
    );
    const held = await waitForStatus(handle, (s) => s.deadline?.holding === true);
    expect(held).toMatchObject({ paused: true, shareBps: 5000, deadline: { kind: 'step', action: 'hold' } });
    expect(held.decisions.at(-1)!.reasons[0]).toMatch(
      /^progress deadline passed: the step at 50% has not advanced in \S+ \(progressDeadline.step 500ms\)$/,
    );
    await waitForStatus(handle, (s) => s.decisions.length > held.decisions.length + 2);
    expect((await handle.query(statusQuery)).decisionSummary?.byPolicy['progress-deadline']).toBe(1);
    const promoted = await handle.executeUpdate(promoteUpdate, { args: [{ actor: 'release-manager' }] });
    expect(promoted.deadline?.holding).toBe(false);
    expect((await handle.result()).result).toBe('completed');
    expect(kinds(route).filter((k) => k === 'deadline')).toHaveLength(1);
    await saveHistory(client, handle.workflowId, undefined, 'deadline-held-promoted');
  }, 60_000);

  it('a rollout past its progress deadline rolls back when the spec says so', async () => {
    const route = 'story-deadline-rollback';
    world.scripts.set(route, { step: holding });
    const handle = await start(
      route,
      spec(route, { progressDeadline: { step: '1h', rollout: '600ms', action: 'rollback' } }),
    );
    const outcome = await handle.result();
    expect(outcome.reason).toMatch(
      /^progress deadline passed: not promoted \S+ after it started \(progressDeadline.rollout 600ms\) \(by progress-deadline\)$/,
    );
    expect(outcome.evidence).toMatchObject({ deadline: 'rollout', deadlineMs: 600 });
    await saveHistory(client, handle.workflowId, undefined, 'deadline-rolled-back');
  }, 60_000);

  it('continues as new through shadow and canary as one story: every step once, every decision counted', async () => {
    const route = 'story-continued';
    let checks = 0;
    world.scripts.set(route, {
      // Each share holds for a few checks first, so the history grows past the server's suggestion.
      step: (share) =>
        checks++ % 4 === 3 ? { stable: arm(30_000, 4.8), canary: arm(3 * share, 4.8) } : holding(),
    });
    const handle = await start(
      route,
      spec(route, {
        shadow: { enabled: true, rate: 0.5, minComparisons: 40, require: 'none' },
        canary: { steps: [1000, 5000, 10_000] },
      }),
    );
    const outcome = await handle.result();
    expect(outcome.result).toBe('completed');
    const status = await handle.query(statusQuery);
    expect(status.generation).toBeGreaterThanOrEqual(2);
    expect(status.firstRunId).toBe(handle.firstExecutionRunId);
    expect(status.steps.map((s) => s.toBps)).toEqual([1000, 5000, 10_000]);
    const decisions = world.decisions.filter((d) => d.route === route);
    expect(status.decisionSummary?.total).toBe(decisions.length);
    expect(new Set(decisions.map((d) => d.runId)).size).toBeGreaterThanOrEqual(2);
    const reasons = world.routes.get(route)!.changes.map((c) => c.reason);
    expect(reasons.filter((r) => /canary share/.test(r))).toHaveLength(2);
    expect(reasons.filter((r) => /promote .* to stable/.test(r))).toHaveLength(1);
    expect(reasons.filter((r) => /shadow phase over/.test(r))).toHaveLength(1);
    expect(kinds(route)).toEqual(['promotion', 'completed']);
    await saveHistory(client, handle.workflowId, handle.firstExecutionRunId, 'continued-first-run');
    await saveHistory(client, handle.workflowId, undefined, 'continued-last-run');
  }, 90_000);

  it('walks a custom step list: shadow, shares, a timed pause, an approval, a pause until resumed, the promotion, a bake', async () => {
    const route = 'story-custom';
    const handle = await start(route, {
      ...spec(route),
      bake: undefined,
      steps: [
        { shadow: { rate: 0.2, minComparisons: 10 } },
        { setShare: '10%' },
        { pause: { duration: '300ms' } },
        { approve: { timeout: '1h' } },
        { setShare: 5000 },
        { pause: {} },
        { setShare: 10_000 },
        { bake: { duration: '200ms' } },
      ],
    } as RolloutSpecInput);
    const approval = await waitForStatus(handle, (s) => s.awaitingApproval);
    expect(approval.step).toMatchObject({ index: 3, kind: 'approve' });
    expect(approval.shareBps).toBe(1000);
    expect(approval.plan.map((p) => p.description)).toEqual([
      'shadow 20% of stable requests (until 10 pairs)',
      'canary share 10%',
      'pause 300ms',
      'approval (within 1h, else rollback)',
      'canary share 50%',
      'pause until resumed',
      'promote to 100%',
      'bake 200ms',
    ]);
    const description = await handle.describe();
    expect(description.searchAttributes.RolloutStep).toEqual([4]);
    expect(description.searchAttributes.RolloutStepKind).toEqual(['approve']);
    await handle.executeUpdate(approveUpdate, { args: [{ actor: 'release-manager' }] });
    const paused = await waitForStatus(handle, (s) => s.step?.index === 5);
    expect(paused).toMatchObject({ phase: 'paused', paused: true, shareBps: 5000 });
    // The pause waits for a person however long it takes.
    await new Promise((r) => setTimeout(r, 500));
    expect((await handle.query(statusQuery)).step?.index).toBe(5);
    await handle.executeUpdate(resumeUpdate, { args: [{ actor: 'ops' }] });
    expect((await handle.result()).result).toBe('completed');
    const status = await handle.query(statusQuery);
    expect(status.steps.map((s) => [s.toBps, s.by])).toEqual([
      [1000, 'policy'],
      [5000, 'release-manager'],
      [10_000, 'policy'],
    ]);
    expect(kinds(route)).toEqual(['pause', 'approval-needed', 'pause', 'resume', 'promotion', 'completed']);
    await saveHistory(client, handle.workflowId, undefined, 'custom-step-list');
  }, 60_000);

  it('promote --full passes the shares before the promotion but stops at an approval', async () => {
    const route = 'story-full';
    world.scripts.set(route, { step: holding });
    const handle = await start(route, {
      ...spec(route),
      bake: undefined,
      steps: [
        { setShare: 500 },
        { setShare: 2000 },
        { approve: {} },
        { setShare: 5000 },
        { setShare: 10_000 },
      ],
    } as RolloutSpecInput);
    await waitForStatus(handle, (s) => s.shareBps === 500);
    const atGate = await handle.executeUpdate(promoteUpdate, { args: [{ actor: 'ops', toFull: true }] });
    expect(atGate).toMatchObject({ awaitingApproval: true, shareBps: 500, step: { index: 2 } });
    await handle.executeUpdate(approveUpdate, { args: [{ actor: 'release-manager' }] });
    expect((await handle.result()).result).toBe('completed');
    expect((await handle.query(statusQuery)).steps.map((s) => s.toBps)).toEqual([500, 10_000]);
  }, 60_000);

  describe('the real day-long defaults, at their real values', () => {
    /** The state a rollout hands to its next run, `ageMs` after it started, at `index` of its list. */
    function carryOf(
      route: string,
      s: RolloutSpecInput,
      o: { ageMs: number; index: number; state: unknown; stepAgeMs: number },
    ): RolloutCarry {
      const parsed = parseRolloutSpec(s);
      const r = world.routes.get(route) ?? world.createRoute(route);
      // The route as the first run left it: claimed, the candidate at 5%.
      Object.assign(r, {
        owner: `rollout-${route}`,
        green: parseRolloutSpec(s).candidate,
        canaryBps: 500,
        version: 3,
      });
      const now = Date.now();
      return {
        generation: 7,
        firstRunId: `first-run-of-${route}`,
        steps: parsed.steps,
        policy: parsed.policy,
        claim: { stable: 'anthropic:claude-sonnet-4', stableSlot: 'blue', candidateSlot: 'green' },
        startedMs: now - o.ageMs,
        changes: 2,
        advancedBy: 'policy',
        toFull: false,
        lastTriggerCheckMs: 0,
        watch: { tag: 'canary', sinceMs: now - o.ageMs },
        canary: { fromMs: now - o.ageMs, baselineMs: 1000, stepVersions: [3] },
        deadlines: { stepFromMs: now - o.stepAgeMs, stepPassed: false, rolloutPassed: false },
        pending: {},
        at: { index: o.index, state: o.state },
        status: {
          route,
          workflowId: `rollout-${route}`,
          strategy: parsed.strategy,
          phase: 'canary',
          shareBps: 500,
          paused: false,
          awaitingApproval: false,
          stable: 'anthropic:claude-sonnet-4',
          candidate: 'openai:gpt-4o',
          routingVersion: 3,
          startedAt: new Date(now - o.ageMs).toISOString(),
          generation: 7,
          firstRunId: `first-run-of-${route}`,
          plan: [],
          decisions: [],
          triggers: [],
          steps: [{ at: new Date(now - o.ageMs).toISOString(), fromBps: 0, toBps: 500, by: 'policy' }],
        },
      };
    }
    // The defaults: progressDeadline 24h per step and 7d per rollout, action hold; approval timeout 24h.
    const defaults = (route: string) => ({ ...spec(route), progressDeadline: undefined });

    it('a step held for 24 h (progressDeadline.step default) is held and alerted; 23 h 59 m is not', async () => {
      const route = 'story-day-step';
      world.scripts.set(route, { step: holding });
      world.scripts.set('story-day-step-young', { step: holding });
      const young = await start(
        'story-day-step-young',
        defaults('story-day-step-young'),
        carryOf('story-day-step-young', defaults('story-day-step-young'), {
          ageMs: 2 * DAY,
          index: 0,
          state: { stepFromMs: Date.now() - DAY + 60_000 },
          stepAgeMs: DAY - 60_000,
        }),
      );
      const handle = await start(
        route,
        defaults(route),
        carryOf(route, defaults(route), {
          ageMs: 2 * DAY,
          index: 0,
          state: { stepFromMs: Date.now() - DAY },
          stepAgeMs: DAY,
        }),
      );
      const held = await waitForStatus(handle, (s) => s.deadline !== undefined);
      expect(held.deadline).toMatchObject({ kind: 'step', action: 'hold', holding: true });
      expect(held.decisions.at(-1)!.reasons[0]).toMatch(
        /^progress deadline passed: the step at 5% has not advanced in 1d(\d+s)? \(progressDeadline.step 1d\)$/,
      );
      await until(() => kinds(route).includes('deadline'), 'the deadline alert', 10_000);
      // The younger step went through the same checks without a deadline.
      const other = await waitForStatus(young, (s) => s.decisions.length >= 3);
      expect(other.deadline).toBeUndefined();
      await young.executeUpdate(rollbackUpdate, { args: [{ reason: 'test over' }] });
      await handle.executeUpdate(rollbackUpdate, { args: [{ reason: 'test over' }] });
    }, 60_000);

    it('a rollout not promoted 7 d after it started (progressDeadline.rollout default) is held', async () => {
      const route = 'story-week';
      world.scripts.set(route, { step: holding });
      const handle = await start(
        route,
        defaults(route),
        carryOf(route, defaults(route), {
          ageMs: 7 * DAY,
          index: 0,
          state: { stepFromMs: Date.now() - HOUR },
          stepAgeMs: HOUR,
        }),
      );
      const held = await waitForStatus(handle, (s) => s.deadline !== undefined);
      expect(held.deadline).toMatchObject({ kind: 'rollout', action: 'hold' });
      expect(held.decisions.at(-1)!.reasons[0]).toMatch(
        /^progress deadline passed: not promoted 7d(\d+s)? after it started \(progressDeadline.rollout 7d\)$/,
      );
      // The runs before this one are counted: one story.
      expect(held.generation).toBe(7);
      await handle.executeUpdate(rollbackUpdate, { args: [{ reason: 'test over' }] });
    }, 60_000);

    it('an approval not given within 24 h (approval.timeout default) rolls back', async () => {
      const route = 'story-day-approval';
      const s = { ...defaults(route), canary: { steps: [500, 10_000] }, approval: { required: true } };
      const outcome = await (
        await start(
          route,
          s,
          carryOf(route, s, {
            ageMs: 2 * DAY,
            index: 1,
            state: { sinceMs: Date.now() - DAY },
            stepAgeMs: DAY,
          }),
        )
      ).result();
      expect(outcome).toMatchObject({
        result: 'rolled_back',
        reason: 'no approval within 1d (by approval-timeout)',
      });
    }, 60_000);
  });

  describe('alert URLs cannot be forged into a workflow', () => {
    it('a raw client starting a rollout with a webhook URL is refused by field, and the URL gets no request', async () => {
      const route = 'story-forged';
      world.createRoute(route);
      const error = await client.workflow
        .execute(rolloutWorkflow, {
          taskQueue: env.taskQueue,
          workflowId: `rollout-${route}`,
          args: [{ route, candidate: 'openai:gpt-4o', alerts: { webhookUrl: `${hook.url}/forged-rollout` } }],
        })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WorkflowFailedError);
      const message = String((error as WorkflowFailedError).cause?.message);
      expect(message).toContain('alerts.webhookUrl: a webhook URL is a secret');
      expect(message).not.toContain('forged');
      // A URL given as a channel name is refused by the spec too.
      const asChannel = await client.workflow
        .execute(rolloutWorkflow, {
          taskQueue: env.taskQueue,
          workflowId: `rollout-${route}-channel`,
          args: [{ route, candidate: 'openai:gpt-4o', alerts: { channels: [`${hook.url}/forged-channel`] } }],
        })
        .catch((e: unknown) => e);
      expect(String((asChannel as WorkflowFailedError).cause?.message)).toMatch(
        /alerts\.channels\.0: a channel name/,
      );
      expect(hook.requests.filter((r) => r.path.startsWith('/forged'))).toEqual([]);
    }, 30_000);

    it('a guardian started with a webhook URL is refused by field; one signalled with a URL alerts only to its channels', async () => {
      const refused = await client.workflow
        .execute(routeGuardianWorkflow, {
          taskQueue: env.taskQueue,
          workflowId: 'guardian-story-forged',
          args: [
            {
              route: 'story-forged',
              triggers: [],
              intervalMs: 100,
              sinceMs: Date.now(),
              alertWebhook: `${hook.url}/forged-guardian`,
            } as never,
          ],
        })
        .catch((e: unknown) => e);
      expect(String((refused as WorkflowFailedError).cause?.message)).toMatch(
        /^alertWebhook: a guardian alerts only to channels configured on the worker/,
      );

      // A guardian whose stable model fails every check while the previous one was healthy: it switches
      // back and forth (one alert per switch), and keeps only its latest switches through continue-as-new.
      const route = 'story-guarded';
      world.createRoute(route).green = parseRolloutSpec(spec(route)).candidate;
      world.scripts.set(route, {
        triggers: ({ sinceMs }) => (sinceMs === 0 ? arm(100, 4.8) : arm(100, 4.8, { errors: 100 })),
      });
      const triggers = (await import('../workflows/triggers')).triggerSpecsOf(parseRolloutSpec(spec(route)));
      const guardian = await client.workflow.start(routeGuardianWorkflow, {
        taskQueue: env.taskQueue,
        workflowId: `guardian-${route}`,
        args: [
          {
            route,
            triggers,
            intervalMs: 50,
            sinceMs: Date.now(),
            alertChannels: [{ name: 'test-hook' }],
            keepSwitches: 3,
          },
        ],
      });
      await guardian.signal(watchSignal, {
        route,
        triggers,
        intervalMs: 50,
        sinceMs: Date.now(),
        alertChannels: [{ name: 'test-hook' }],
        alertWebhook: `${hook.url}/forged-signal`,
      } as never);
      let state = await guardian.query(guardianStatusQuery);
      await until(
        async () => ((state = await guardian.query(guardianStatusQuery)).switchCount ?? 0) >= 6,
        'the guardian to switch more than it keeps',
        30_000,
      ).catch((err) => {
        throw new Error(`${(err as Error).message}: ${JSON.stringify({ ...state, triggers: undefined })}`);
      });
      expect(state.switches).toHaveLength(3);
      expect(state.switches!.at(-1)!.reason).toMatch(/error_rate/);
      expect(state).not.toHaveProperty('alertWebhook');
      await guardian.terminate('test over');
      await until(() => hook.alertsOf(route).length > 0, 'the guardian alerts', 10_000);
      expect(hook.requests.filter((r) => r.path.startsWith('/forged'))).toEqual([]);
    }, 60_000);
  });
});
