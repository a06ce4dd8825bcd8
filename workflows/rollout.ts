import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { AlertEvent } from '../activities/alerts';
import { channelsFor } from '../src/alerts/kinds';
import { formatDuration } from '../src/config/duration';
import { parseRolloutSpec, type RolloutSpec } from '../src/config/rollout-spec';
import { formatTarget } from '../src/config/target';
import { analyzeShadow, decide, evaluateTriggers, type Decision, type ShadowAnalysis } from '../src/policy';
import {
  CanaryBasisPoints,
  RolloutCandidate,
  RolloutPhase,
  RolloutRoute,
  RolloutStrategy,
} from '../src/temporal/search-attributes';
import { triggerSpecsOf } from './triggers';
import {
  approveSignal,
  pauseSignal,
  promoteSignal,
  resumeSignal,
  rollbackSignal,
  rollbackUpdate,
  statusQuery,
  type RollbackInput,
  type RolloutOutcome,
  type RolloutPhase as Phase,
  type RolloutStatus,
} from './messages';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10 },
});
/** Alerts are retried a few times and never waited on longer than that: a dead webhook must not hold a rollout. */
const alerts = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '5 seconds', maximumAttempts: 5 },
});

/**
 * Since this patch the sequential policy's final gate also checks the error rate. Rollouts that started
 * before it keep deciding as they did, so their histories replay unchanged.
 */
const FINAL_GATE_ERRORS = 'final-gate-error-rate';

/**
 * Alerts go to channels named in the spec (URLs only on the worker). Rollouts started before this patch
 * may carry `alerts.webhookUrl` in their input and keep alerting there; new ones are refused such a spec.
 */
const ALERT_CHANNELS = 'alert-channels';

/** The policy config without the final gate's error check (what rollouts before the patch decided on). */
function withoutErrorGate(policy: RolloutSpec['policy']): RolloutSpec['policy'] {
  const sequential = policy.sequential ?? {};
  return { ...policy, sequential: { ...sequential, finalGate: { ...sequential.finalGate, errorRatio: 0 } } };
}

/** Thrown inside the story to stop it and roll back, with the evidence. */
class RollbackRequested extends Error {
  constructor(
    readonly reason: string,
    readonly actor: string,
    readonly evidence: Record<string, unknown> = {},
  ) {
    super(reason);
  }
}

/**
 * One rollout of a candidate model onto a route: an optional shadow phase, then either canary doubling or a
 * blue-green switch, an optional human approval, promotion, and a bake under the triggers. A rollback (by
 * the policy, a trigger or a person) can happen at any point and restores the previous stable slot.
 */
export async function rolloutWorkflow(input: unknown): Promise<RolloutOutcome> {
  let spec: RolloutSpec;
  try {
    // Rollouts started before alert channels carry a webhook URL in their input; new ones may not.
    spec = parseRolloutSpec(input, { legacyWebhookUrl: !patched(ALERT_CHANNELS) });
  } catch (err) {
    throw ApplicationFailure.nonRetryable((err as Error).message, 'InvalidSpec');
  }
  const { workflowId, runId } = workflowInfo();
  const route = spec.route;
  const candidateName = formatTarget(spec.candidate.target);
  const triggers = triggerSpecsOf(spec);

  const status: RolloutStatus = {
    route,
    workflowId,
    strategy: spec.strategy,
    phase: 'starting',
    shareBps: 0,
    paused: false,
    awaitingApproval: false,
    stable: '',
    candidate: candidateName,
    routingVersion: 0,
    startedAt: new Date().toISOString(),
    decisions: [],
    triggers: [],
    steps: [],
  };
  let rollbackRequest: RollbackRequested | undefined;
  let promoteRequest: { toFull: boolean; actor: string } | undefined;
  let approvedBy: string | undefined;
  let outcome: RolloutOutcome | undefined;
  let previousStableSlot: 'blue' | 'green' = 'blue';
  let candidateSlot: 'blue' | 'green' = 'green';
  let lastTriggerCheck = 0;
  let step = 0; // counts routing changes, for idempotency keys
  let promotedBy = 'policy'; // who took the last step to 100%: the policy, or the actor of a promote signal

  // ---- messages --------------------------------------------------------------------------------------
  setHandler(statusQuery, () => status);
  setHandler(pauseSignal, (by) => {
    if (status.paused || outcome) return;
    status.paused = true;
    void alert('pause', `Rollout of ${candidateName} on ${route} paused by ${by?.actor ?? 'someone'}`, {
      reason: by?.reason,
    });
    publish();
  });
  setHandler(resumeSignal, (by) => {
    if (!status.paused) return;
    status.paused = false;
    void alert('resume', `Rollout of ${candidateName} on ${route} resumed by ${by?.actor ?? 'someone'}`);
    publish();
  });
  const requestRollback = (req: RollbackInput) => {
    rollbackRequest ??= new RollbackRequested(req?.reason || 'manual rollback', req?.actor ?? 'someone', {
      manual: true,
    });
  };
  setHandler(rollbackSignal, requestRollback);
  setHandler(
    rollbackUpdate,
    async (req) => {
      requestRollback(req);
      await condition(() => outcome !== undefined);
      return outcome!;
    },
    { validator: (req) => void (req?.reason ? undefined : assertReason()) },
  );
  setHandler(promoteSignal, (req) => {
    promoteRequest = { toFull: !!req?.toFull, actor: req?.actor ?? 'someone' };
  });
  setHandler(approveSignal, (by) => {
    approvedBy = by?.actor ?? 'someone';
  });

  // ---- the story -------------------------------------------------------------------------------------
  const claim = await acts.claimRoute.executeWithOptions(
    { ...activityDefaults(), summary: `claim ${route} for ${candidateName}` },
    [
      {
        route,
        owner: workflowId,
        idempotencyKey: `${runId}:claim`,
        candidate: spec.candidate,
        salt: uuid4(),
        actor: spec.actor,
      },
    ],
  );
  status.routingVersion = claim.version;
  status.stable = claim.stable;
  previousStableSlot = claim.stableSlot;
  candidateSlot = claim.candidateSlot;
  const startedMs = Date.now();
  publish();

  try {
    if (spec.shadow.enabled) {
      const report = await shadowPhase();
      if (spec.strategy === 'shadow-only') {
        await changeRouting({ shadowRate: 0 }, 'shadow phase over');
        await releaseRoute(`shadow-only rollout finished: ${report.recommendation}`);
        return finish({
          result: 'shadow-report',
          reason: `shadow report: ${report.recommendation} (${report.reasons[0] ?? ''})`,
          shadow: report,
        });
      }
      const blocks =
        (spec.shadow.require === 'promote' && report.recommendation !== 'promote') ||
        (spec.shadow.require === 'not-worse' && report.recommendation === 'keep-stable');
      if (blocks)
        throw new RollbackRequested(`shadow report says ${report.recommendation}`, 'shadow', {
          shadow: report,
        });
      await changeRouting({ shadowRate: 0 }, 'shadow phase over');
    }

    if (spec.strategy === 'canary') await canaryPhase();
    await approvalGate();
    await promote();
    await bake();

    await releaseRoute(`rollout completed: ${candidateName} is stable`);
    await acts.ensureGuardian({
      route,
      triggers,
      intervalMs: spec.triggers.interval,
      alertChannels: spec.alerts.channels,
      ...(spec.alerts.webhookUrl ? { alertWebhook: spec.alerts.webhookUrl } : {}),
    });
    void alert('completed', `${candidateName} is now stable on ${route}`);
    return finish({
      result: 'completed',
      reason: `${candidateName} promoted to 100% and baked for ${formatDuration(spec.bake.duration)}`,
    });
  } catch (err) {
    if (err instanceof RollbackRequested) return rollBack(err);
    if (isCancellation(err)) {
      // Cancellation must still leave the route on its stable model, so the cleanup cannot be cancelled.
      await CancellationScope.nonCancellable(async () => {
        await restore('rollout cancelled', 'cancel');
        finish({ result: 'cancelled', reason: 'rollout cancelled; stable routing restored' });
      });
      throw err;
    }
    // An unexpected failure (say, the route changed under us): restore the stable routing, then fail loudly.
    await CancellationScope.nonCancellable(() =>
      restore(`rollout failed: ${(err as Error).message}`, 'failure'),
    );
    throw err;
  }

  // ---- phases ------------------------------------------------------------------------------------------

  async function shadowPhase(): Promise<ShadowAnalysis> {
    setPhase('shadow');
    await changeRouting(
      { shadowRate: spec.shadow.rate },
      `shadow ${Math.round(spec.shadow.rate * 100)}% of stable requests to ${candidateName}`,
    );
    const since = Date.now();
    const deadline = since + spec.shadow.maxDuration;
    let report = analyzeShadow({ shadowBetter: 0, stableBetter: 0, ties: 0 });
    for (;;) {
      await tick(spec.evaluation.interval, 'shadow evaluation');
      await checkTriggers('shadow', since);
      await acts.scoreAnswers.executeWithOptions({ ...activityDefaults(), summary: 'score answers' }, [
        { route, fromMs: since, limit: spec.evaluation.scoreBatch, judge: spec.evaluation.judge },
      ]);
      const counts = await acts.compareShadowPairs.executeWithOptions(
        { ...activityDefaults(), summary: 'compare shadow pairs' },
        [{ route, fromMs: since, limit: spec.evaluation.scoreBatch, judge: spec.evaluation.judge }],
      );
      report = analyzeShadow(counts);
      status.shadow = report;
      const compared = counts.shadowBetter + counts.stableBetter + counts.ties;
      const overBudget = spec.shadow.budgetUsd !== undefined && counts.costUsd >= spec.shadow.budgetUsd;
      await record('shadow', {
        action: 'hold',
        policy: 'sequential',
        reasons: [...report.reasons, `seed rule (better > worse * 1.5): ${report.seedRule.recommendation}`],
        stats: {
          compared,
          shadowBetter: counts.shadowBetter,
          stableBetter: counts.stableBetter,
          ties: counts.ties,
          costUsd: counts.costUsd,
          winRate: report.winRate,
        },
      });
      if (compared >= spec.shadow.minComparisons || Date.now() >= deadline || overBudget) return report;
      if (promoteRequest) {
        promoteRequest = undefined; // a person ends the shadow phase early
        return report;
      }
    }
  }

  async function canaryPhase(): Promise<void> {
    setPhase('canary');
    const steps = spec.canary.steps;
    const baseline = await acts.baselineP95({ route, fromMs: startedMs - 15 * 60_000, toMs: Date.now() });
    let index = 0;
    await setShare(steps[0], 'policy');
    const canaryFrom = Date.now();
    let stepFrom = canaryFrom;
    while (steps[index] < 10_000) {
      await tick(spec.evaluation.interval, `evaluate canary at ${bpsText(steps[index])}`);
      await checkTriggers('canary', canaryFrom);
      if (promoteRequest) {
        const { toFull, actor } = promoteRequest;
        promoteRequest = undefined;
        index = toFull ? steps.length - 1 : index + 1;
        if (steps[index] >= 10_000) {
          promotedBy = actor;
          return; // promotion itself happens after the approval gate
        }
        await setShare(steps[index], actor);
        stepFrom = Date.now();
        continue;
      }
      await acts.scoreAnswers.executeWithOptions({ ...activityDefaults(), summary: 'score answers' }, [
        { route, fromMs: canaryFrom, limit: spec.evaluation.scoreBatch, judge: spec.evaluation.judge },
      ]);
      const stats = await acts.canaryStats.executeWithOptions(
        { ...activityDefaults(), summary: 'stable vs canary statistics' },
        [{ route, fromMs: canaryFrom, stepFromMs: stepFrom, toMs: Date.now(), slowThresholdMs: baseline }],
      );
      const decision = decide({
        ...stats,
        context: {
          shareBps: steps[index],
          stepIndex: index,
          steps,
          isFinalStep: steps[index + 1] === 10_000,
        },
        config: patched(FINAL_GATE_ERRORS) ? spec.policy : withoutErrorGate(spec.policy),
      });
      await record('canary', decision);
      if (decision.action === 'rollback') {
        throw new RollbackRequested(
          `canary policy (${decision.policy}): ${decision.reasons[0] ?? 'quality drop'}`,
          'policy',
          decision.stats,
        );
      }
      if (decision.action === 'promote-step' && !status.paused) {
        index += 1;
        if (steps[index] >= 10_000) return;
        await setShare(steps[index], 'policy');
        stepFrom = Date.now();
      }
    }
  }

  async function approvalGate(): Promise<void> {
    if (!spec.approval.required) return;
    setPhase('awaiting-approval');
    status.awaitingApproval = true;
    publish();
    void alert(
      'approval-needed',
      `Rollout of ${candidateName} on ${route} waits for approval (signal "approve")`,
    );
    const deadline = Date.now() + spec.approval.timeout;
    const since = Date.now();
    while (!approvedBy) {
      const timedOut = Date.now() >= deadline;
      if (timedOut && spec.approval.onTimeout === 'rollback') {
        throw new RollbackRequested(
          `no approval within ${formatDuration(spec.approval.timeout)}`,
          'approval-timeout',
        );
      }
      await tick(
        timedOut ? spec.triggers.interval : Math.min(spec.triggers.interval, deadline - Date.now()),
        'wait for approval',
        () => !!approvedBy,
      );
      promoteRequest = undefined; // promotion waits for the approval, not for a promote signal
      await checkTriggers(spec.strategy === 'canary' ? 'canary' : 'shadow', since);
    }
    status.awaitingApproval = false;
    log.info('approved', { actor: approvedBy });
  }

  async function promote(): Promise<void> {
    setPhase('promoting');
    const from = status.shareBps;
    await changeRouting(
      { stableSlot: candidateSlot, canaryBps: 0 },
      `promote ${candidateName} to stable (100%)`,
    );
    status.steps.push({ at: new Date().toISOString(), fromBps: from, toBps: 10_000, by: promotedBy });
    status.shareBps = 10_000;
    status.stable = candidateName;
    publish();
    void alert('promotion', `${candidateName} promoted to stable on ${route}`);
  }

  async function bake(): Promise<void> {
    setPhase('baking');
    const since = Date.now();
    const end = since + spec.bake.duration;
    lastTriggerCheck = 0;
    while (Date.now() < end) {
      await tick(
        Math.min(spec.triggers.interval, end - Date.now()),
        `bake (${formatDuration(spec.bake.duration)})`,
      );
      promoteRequest = undefined; // nothing left to promote
      await checkTriggers('stable', since);
    }
  }

  // ---- helpers -----------------------------------------------------------------------------------------

  /** Waits for the next tick, waking early for a rollback (which then throws), a promotion or `wake`. */
  async function tick(ms: number, summary: string, wake: () => boolean = () => false): Promise<void> {
    await condition(
      () => rollbackRequest !== undefined || promoteRequest !== undefined || wake(),
      Math.max(ms, 1),
      { summary },
    );
    if (rollbackRequest) throw rollbackRequest;
  }

  async function checkTriggers(tag: 'shadow' | 'canary' | 'stable', sinceMs: number): Promise<void> {
    const now = Date.now();
    if (now - lastTriggerCheck < spec.triggers.interval) return;
    lastTriggerCheck = now;
    const metrics = await acts.triggerMetrics.executeWithOptions(
      { ...activityDefaults(), summary: `trigger metrics (${tag})` },
      [{ route, tag, sinceMs, nowMs: now, triggers, target: tag === 'stable' ? candidateName : undefined }],
    );
    const { fired, results } = evaluateTriggers(triggers, metrics);
    status.triggers = results;
    if (fired.length > 0) {
      await record(status.phase, {
        action: 'rollback',
        policy: 'sequential',
        reasons: fired.map((f) => `trigger ${f.reason}`),
        stats: Object.fromEntries(fired.map((f) => [f.metric, f.value])),
      });
      void alert('trigger', `Trigger fired on ${route}: ${fired.map((f) => f.reason).join('; ')}`);
      throw new RollbackRequested(`trigger fired: ${fired.map((f) => f.reason).join('; ')}`, 'trigger', {
        triggers: fired as unknown as Record<string, unknown>[],
      });
    }
  }

  async function setShare(bps: number, by: string): Promise<void> {
    const from = status.shareBps;
    await changeRouting({ canaryBps: bps }, `canary share ${bpsText(from)} -> ${bpsText(bps)} (by ${by})`);
    status.shareBps = bps;
    status.steps.push({ at: new Date().toISOString(), fromBps: from, toBps: bps, by });
    publish();
  }

  async function changeRouting(patch: Record<string, unknown>, reason: string): Promise<void> {
    step += 1;
    status.routingVersion = await acts.applyRouting.executeWithOptions(
      { ...activityDefaults(), summary: reason },
      [
        {
          route,
          owner: workflowId,
          idempotencyKey: `${runId}:${step}`,
          expectedVersion: status.routingVersion,
          patch,
          actor: workflowId,
          reason,
        },
      ],
    );
  }

  /** Ends ownership of a route this rollout leaves as it is (shadow-only report, or a completed rollout). */
  async function releaseRoute(reason: string): Promise<void> {
    await acts.releaseRoute({
      route,
      owner: workflowId,
      idempotencyKey: `${runId}:release`,
      expectedVersion: status.routingVersion,
      actor: workflowId,
      reason,
    });
  }

  async function restore(reason: string, key: string): Promise<void> {
    status.routingVersion = await acts.restoreStable.executeWithOptions(
      { ...activityDefaults(), summary: `restore ${route} to its stable slot` },
      [
        {
          route,
          owner: workflowId,
          idempotencyKey: `${runId}:restore:${key}`,
          stableSlot: previousStableSlot,
          actor: workflowId,
          reason,
        },
      ],
    );
    status.shareBps = 0;
  }

  async function rollBack(req: RollbackRequested): Promise<RolloutOutcome> {
    const reason = `${req.reason} (by ${req.actor})`;
    await CancellationScope.nonCancellable(() => restore(reason, 'rollback'));
    status.stable = claim.stable;
    const result = finish({ result: 'rolled_back', reason, evidence: req.evidence, shadow: status.shadow });
    // The routing is already restored; the alert may take its retries without holding anything back.
    await alert('rollback', `Rolled back ${candidateName} on ${route}: ${reason}`, req.evidence);
    return result;
  }

  function finish(
    partial: Omit<RolloutOutcome, 'route' | 'finalShareBps' | 'stable' | 'at'>,
  ): RolloutOutcome {
    outcome = {
      route,
      finalShareBps: status.shareBps,
      stable: status.stable,
      at: new Date().toISOString(),
      ...partial,
    };
    status.outcome = outcome;
    setPhase(
      partial.result === 'completed'
        ? 'completed'
        : partial.result === 'rolled_back'
          ? 'rolled_back'
          : partial.result === 'cancelled'
            ? 'cancelled'
            : 'shadow-report',
    );
    return outcome;
  }

  async function record(phase: Phase, decision: Decision): Promise<void> {
    status.decisions.push({ ...decision, at: new Date().toISOString(), phase, shareBps: status.shareBps });
    if (status.decisions.length > 10) status.decisions.shift();
    publish();
    await acts.recordDecision.executeWithOptions(
      { ...activityDefaults(), summary: `${decision.action}: ${decision.reasons[0] ?? ''}`.slice(0, 200) },
      [
        {
          route,
          workflowId,
          runId,
          phase,
          shareBps: status.shareBps,
          action: decision.action,
          policy: decision.policy,
          reasons: decision.reasons,
          stats: decision.stats,
        },
      ],
    );
  }

  async function alert(
    kind: AlertEvent['kind'],
    title: string,
    details?: Record<string, unknown>,
  ): Promise<void> {
    try {
      const target = spec.alerts.webhookUrl ?? channelsFor(spec.alerts.channels, kind);
      await alerts.sendAlert(target, { kind, route, workflowId, title, details });
    } catch (err) {
      log.warn('alert could not be delivered', { kind, error: (err as Error).message });
    }
  }

  function setPhase(phase: Phase): void {
    status.phase = phase;
    publish();
  }

  /** Search attributes, memo and the UI's "current details": the rollout's story at a glance. */
  function publish(): void {
    upsertSearchAttributes([
      { key: RolloutRoute, value: route },
      { key: RolloutPhase, value: status.phase },
      { key: RolloutCandidate, value: candidateName },
      { key: RolloutStrategy, value: spec.strategy },
      { key: CanaryBasisPoints, value: status.shareBps },
    ]);
    const last = status.decisions[status.decisions.length - 1];
    upsertMemo({
      route,
      candidate: candidateName,
      stable: status.stable,
      phase: status.phase,
      shareBps: status.shareBps,
      lastDecision: last?.reasons[0] ?? null,
    });
    setCurrentDetails(
      [
        `**${route}**: ${status.stable || '?'} (stable) -> ${candidateName} (candidate), ${spec.strategy}`,
        `phase **${status.phase}**${status.paused ? ' (paused)' : ''}, canary share **${bpsText(status.shareBps)}**`,
        last ? `last decision: ${last.action} - ${last.reasons.join('; ')}` : '',
        outcome ? `outcome: ${outcome.result} - ${outcome.reason}` : '',
      ]
        .filter(Boolean)
        .join('\n\n'),
    );
  }
}

function activityDefaults() {
  return {
    startToCloseTimeout: '1 minute',
    retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10 },
  } as const;
}

function bpsText(bps: number): string {
  return `${bps / 100}%`;
}

function assertReason(): never {
  throw new Error('rollback needs a reason');
}
