import {
  ApplicationFailure,
  allHandlersFinished,
  CancellationScope,
  condition,
  ContinueAsNew,
  continueAsNew,
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
import {
  emptyReport,
  evidenceReasons,
  foldReport,
  newScoringStatus,
  noEvidenceCause,
  scoringLine,
  type ScoreReport,
} from '../src/scoring/evidence';
import {
  analyzeShadow,
  decide,
  estimate,
  evaluateTriggers,
  pinSequentialDefaults,
  resolvePolicyConfig,
  SEQUENTIAL_DEFAULTS_V1,
  type Decision,
  type HoldEstimate,
  type PolicyConfig,
  type ShadowAnalysis,
} from '../src/policy';
import {
  CanaryBasisPoints,
  RolloutCandidate,
  RolloutPhase,
  RolloutRoute,
  RolloutStrategy,
} from '../src/temporal/search-attributes';
import { ALERTS, DURABLE } from './activity-options';
import { countDecision, type DeadlineState, type RolloutCarry, type RolloutPosition } from './rollout-carry';
import { triggerSpecsOf } from './triggers';
import {
  approveSignal,
  approveUpdate,
  pauseSignal,
  pauseUpdate,
  promoteSignal,
  promoteUpdate,
  resumeSignal,
  resumeUpdate,
  rollbackSignal,
  rollbackUpdate,
  statusQuery,
  type ActorInput,
  type PromoteInput,
  type RollbackInput,
  type RolloutOutcome,
  type RolloutPhase as Phase,
  type RolloutStatus,
} from './messages';

const acts = proxyActivities<Activities>(DURABLE);
const alerts = proxyActivities<Activities>(ALERTS);

/**
 * Scoring is a pipeline with its own options: long enough for seconds-slow judges, heartbeating (a lost
 * worker is noticed in 30 s, and the retry resumes after the committed chunks), a few attempts, and then
 * the rollout goes on deciding on the evidence it has instead of failing.
 */
const scoring = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 3 },
});

/**
 * Since this patch: scoring as a pipeline (options above, the rollout's evaluators, counted failures and
 * cost in status and decision reasons, the "no quality evidence" alert), and canary statistics and
 * triggers on the candidate's own answers (a fallback's answer is its primary's failure).
 */
const SCORING_PIPELINE = 'scoring-pipeline';

/**
 * Since this patch the sequential policy's final gate also checks the error rate. It is asked at every
 * decision of rollouts without POLICY_RESOLVED_AT_START: their recorded decisions replay unchanged, and a
 * rollout that was running when the patch was deployed checks errors from its next decision on.
 */
const FINAL_GATE_ERRORS = 'final-gate-error-rate';
/** Since this patch a canary step held longer than `alerts.holdAfter` raises a "hold" alert. */
const HOLD_ALERT = 'hold-alert';
/** Since this patch search attributes and memo are upserted only when they change. */
const PUBLISH_CHANGES_ONLY = 'publish-changes-only';
/** Since this patch the workflow waits for its "completed" alert before it completes. */
const COMPLETED_ALERT_AWAITED = 'completed-alert-awaited';

/**
 * Since this patch the sequential policy's defaults are tuned for speed (hold only on material evidence of
 * "worse", likelihood-ratio final gate). A rollout without POLICY_RESOLVED_AT_START asks once, when its
 * canary phase starts: one whose canary started under the v1 defaults keeps them to the end, and its history
 * replays.
 */
const PROMOTION_V2 = 'promotion-v2-speed';

/**
 * Alerts go to channels named in the spec (URLs only on the worker). Rollouts started before this patch
 * may carry `alerts.webhookUrl` in their input and keep alerting there; new ones are refused such a spec.
 */
const ALERT_CHANNELS = 'alert-channels';

/**
 * Since this patch the policy config is resolved in full when the rollout starts (the clients already
 * resolve it into the input; see parseRolloutSpec's `resolvePolicy`), and every decision uses it: a change
 * of the code's defaults no longer changes a running rollout's decisions, and neither of the two patches
 * above is asked again. Rollouts without it merge the config with the defaults at every decision, as before.
 */
const POLICY_RESOLVED_AT_START = 'policy-resolved-at-start';

/**
 * Since this patch a rollout is bounded: `progressDeadline` per canary step and per rollout, and approval
 * timeouts that end ('rollback' or 'approve', alerted). Asked once, when the rollout starts.
 */
const BOUNDED_ROLLOUTS = 'bounded-rollouts';

/**
 * Since this patch a rollout continues as new when the server suggests it (its history has grown long), at
 * the top of a phase's loop with no handler running, carrying its whole state (see rollout-carry.ts).
 * Asked only when the server suggests it, so the histories before it replay unchanged.
 */
const CONTINUE_AS_NEW = 'rollout-continue-as-new';

/** The policy config without the final gate's error check (what rollouts before the patch decided on). */
function withoutErrorGate(policy: PolicyConfig): PolicyConfig {
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
export async function rolloutWorkflow(input: unknown, carried?: RolloutCarry): Promise<RolloutOutcome> {
  // Asked once per rollout, in its first run; the runs after a continue-as-new carry the answers.
  // Rollouts started before alert channels carry a webhook URL in their input; new ones may not.
  const legacyWebhookUrl = carried ? carried.legacyWebhookUrl : !patched(ALERT_CHANNELS);
  const bounded = carried ? carried.bounded : patched(BOUNDED_ROLLOUTS);
  const legacyApprovalHold = carried ? carried.legacyApprovalHold : !bounded;
  let spec: RolloutSpec;
  try {
    spec = parseRolloutSpec(input, { legacyWebhookUrl, legacyApprovalHold });
  } catch (err) {
    throw ApplicationFailure.nonRetryable((err as Error).message, 'InvalidSpec');
  }
  // The config every decision uses; undefined for rollouts before the patch, which resolve it as they go.
  let policy: PolicyConfig | undefined =
    carried?.policy ?? (patched(POLICY_RESOLVED_AT_START) ? resolvePolicyConfig(spec.policy) : undefined);
  const { workflowId, runId } = workflowInfo();
  const keyBase = carried?.firstRunId ?? runId; // idempotency keys stay unique across runs
  const route = spec.route;
  const candidateName = formatTarget(spec.candidate.target);
  const triggers = triggerSpecsOf(spec);

  const status: RolloutStatus = carried?.status ?? {
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
    ...(policy ? { policy: policy as RolloutCarry['policy'] } : {}),
  };
  let rollbackRequest: RollbackRequested | undefined;
  let promoteRequest: { toFull: boolean; actor: string } | undefined = carried?.pending.promote;
  let approvedBy: string | undefined = carried?.pending.approvedBy;
  let outcome: RolloutOutcome | undefined;
  let previousStableSlot: 'blue' | 'green' = carried?.claim.stableSlot ?? 'blue';
  let candidateSlot: 'blue' | 'green' = carried?.claim.candidateSlot ?? 'green';
  let lastTriggerCheck = carried?.lastTriggerCheckMs ?? 0;
  let step = carried?.step ?? 0; // counts routing changes, for idempotency keys
  // who took the last step to 100%: the policy, or the actor of a promote signal
  let promotedBy = carried?.promotedBy ?? 'policy';
  let lastEvidenceMs: number | undefined = carried?.lastEvidenceMs; // when the candidate last got a score
  let published: { attributes: string; memo: string } | undefined; // what publish() last upserted
  let deadlines: DeadlineState | undefined; // the canary's progress deadlines (bounded rollouts)
  const pendingAlerts = new Set<Promise<void>>(); // alerts not waited for, delivered before continuing as new

  // ---- messages --------------------------------------------------------------------------------------
  setHandler(statusQuery, () => status);
  const pause = (by?: ActorInput) => {
    if (status.paused || outcome) return;
    status.paused = true;
    void alert('pause', `Rollout of ${candidateName} on ${route} paused by ${by?.actor ?? 'someone'}`, {
      reason: by?.reason,
    });
    publish();
  };
  const resume = (by?: ActorInput) => {
    if (!status.paused) return;
    status.paused = false;
    restartStepDeadline(); // a person took it back: the step gets its full deadline again
    void alert('resume', `Rollout of ${candidateName} on ${route} resumed by ${by?.actor ?? 'someone'}`);
    publish();
  };
  setHandler(pauseSignal, pause);
  setHandler(resumeSignal, resume);
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
  const requestPromote = (req?: PromoteInput) => {
    promoteRequest = { toFull: !!req?.toFull, actor: req?.actor ?? 'someone' };
  };
  const approve = (by?: ActorInput) => {
    approvedBy = by?.actor ?? 'someone';
  };
  setHandler(promoteSignal, requestPromote);
  setHandler(approveSignal, approve);

  // The Updates: refusals come back to the caller as errors naming the reason; answers are the new status.
  const refuseWhenEnded = (_input?: unknown) => {
    if (outcome) throw new Error(`the rollout has ended (${outcome.result}: ${outcome.reason})`);
  };
  setHandler(
    pauseUpdate,
    (by) => {
      pause(by);
      return status;
    },
    { validator: refuseWhenEnded },
  );
  setHandler(
    resumeUpdate,
    (by) => {
      resume(by);
      return status;
    },
    { validator: refuseWhenEnded },
  );
  setHandler(
    promoteUpdate,
    async (req) => {
      const { phase, steps } = { phase: status.phase, steps: status.steps.length };
      requestPromote(req);
      // Answered once the rollout took the step (or left the phase): the step is taken between two checks.
      await condition(
        () =>
          outcome !== undefined ||
          (promoteRequest === undefined &&
            status.phase !== 'promoting' &&
            (status.phase !== phase || status.steps.length !== steps)),
      );
      return status;
    },
    {
      validator: (_req: PromoteInput) => {
        refuseWhenEnded();
        if (status.awaitingApproval)
          throw new Error(`it waits for approval; approve it with 'model-rollout approve ${route}'`);
        if (status.phase === 'promoting' || status.phase === 'baking')
          throw new Error(`it is already promoted (phase ${status.phase}); nothing left to promote`);
      },
    },
  );
  setHandler(
    approveUpdate,
    async (by) => {
      approve(by);
      if (status.awaitingApproval) {
        await condition(
          () => outcome !== undefined || (!status.awaitingApproval && status.phase !== 'promoting'),
        );
      }
      return status;
    },
    { validator: refuseWhenEnded },
  );

  // ---- the story -------------------------------------------------------------------------------------
  // A continued run holds the claim of the first; it resumes the phase it was in (`at`).
  const at = carried?.at;
  let claim: RolloutCarry['claim'];
  if (carried) {
    claim = carried.claim;
  } else {
    const claimed = await acts.claimRoute.executeWithOptions(
      { ...DURABLE, summary: `claim ${route} for ${candidateName}` },
      [
        {
          route,
          owner: workflowId,
          idempotencyKey: `${keyBase}:claim`,
          candidate: spec.candidate,
          salt: uuid4(),
          actor: spec.actor,
        },
      ],
    );
    status.routingVersion = claimed.version;
    status.stable = claimed.stable;
    previousStableSlot = claimed.stableSlot;
    candidateSlot = claimed.candidateSlot;
    claim = { stable: claimed.stable, stableSlot: claimed.stableSlot, candidateSlot: claimed.candidateSlot };
  }
  const startedMs = carried?.startedMs ?? Date.now();
  publish();

  try {
    if (spec.shadow.enabled && (!at || at.phase === 'shadow')) {
      const report = await shadowPhase(at?.phase === 'shadow' ? at : undefined);
      if (spec.strategy === 'shadow-only') {
        await changeRouting({ shadowRate: 0 }, 'shadow phase over');
        await releaseRoute(`shadow-only rollout finished: ${report.recommendation}`);
        return closing(
          finish({
            result: 'shadow-report',
            reason: `shadow report: ${report.recommendation} (${report.reasons[0] ?? ''})`,
            shadow: report,
          }),
        );
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

    if (spec.strategy === 'canary' && (!at || at.phase === 'shadow' || at.phase === 'canary'))
      await canaryPhase(at?.phase === 'canary' ? at : undefined);
    if (at?.phase !== 'bake') {
      await approvalGate(at?.phase === 'approval' ? at : undefined);
      await promote();
    }
    await bake(at?.phase === 'bake' ? at : undefined);

    await releaseRoute(`rollout completed: ${candidateName} is stable`);
    await acts.ensureGuardian({
      route,
      triggers,
      intervalMs: spec.triggers.interval,
      alertChannels: spec.alerts.channels,
      ...(spec.alerts.webhookUrl ? { alertWebhook: spec.alerts.webhookUrl } : {}),
    });
    const completed = `${candidateName} is now stable on ${route}`;
    // Before this patch the alert was scheduled in the workflow's last task and never ran.
    if (patched(COMPLETED_ALERT_AWAITED)) await alert('completed', completed);
    else void alert('completed', completed);
    return closing(
      finish({
        result: 'completed',
        reason: `${candidateName} promoted to 100% and baked for ${formatDuration(spec.bake.duration)}`,
      }),
    );
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err; // the story goes on in the next run
    if (err instanceof RollbackRequested) return closing(await rollBack(err));
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

  async function shadowPhase(
    resume?: Extract<RolloutPosition, { phase: 'shadow' }>,
  ): Promise<ShadowAnalysis> {
    if (!resume) {
      setPhase('shadow');
      await changeRouting(
        { shadowRate: spec.shadow.rate },
        `shadow ${Math.round(spec.shadow.rate * 100)}% of stable requests to ${candidateName}`,
      );
    }
    const since = resume?.sinceMs ?? Date.now();
    const deadline = resume?.deadlineMs ?? since + spec.shadow.maxDuration;
    let report = status.shadow ?? analyzeShadow({ shadowBetter: 0, stableBetter: 0, ties: 0 });
    for (;;) {
      await maybeContinue({ phase: 'shadow', sinceMs: since, deadlineMs: deadline });
      const batch = await tickWhileScoring(since, 'shadow evaluation');
      await checkTriggers('shadow', since);
      await batch.result();
      const counts = await acts.compareShadowPairs.executeWithOptions(
        { ...DURABLE, summary: 'compare shadow pairs' },
        [{ route, fromMs: since, limit: spec.evaluation.scoreBatch, judge: spec.evaluation.judge }],
      );
      report = analyzeShadow(counts);
      status.shadow = report;
      const compared = counts.shadowBetter + counts.stableBetter + counts.ties;
      const overBudget = spec.shadow.budgetUsd !== undefined && counts.costUsd >= spec.shadow.budgetUsd;
      await record('shadow', {
        action: 'hold',
        policy: 'shadow-sign-test',
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

  async function canaryPhase(resume?: Extract<RolloutPosition, { phase: 'canary' }>): Promise<void> {
    if (!resume) setPhase('canary');
    // Rollouts without a config resolved at start pin it here, once (see PROMOTION_V2).
    const resolvedAtStart = policy !== undefined;
    policy ??= patched(PROMOTION_V2)
      ? spec.policy
      : pinSequentialDefaults(spec.policy, SEQUENTIAL_DEFAULTS_V1);
    const canaryPolicy = policy;
    const steps = spec.canary.steps;
    const baseline = resume
      ? resume.baselineMs
      : await acts.baselineP95({ route, fromMs: startedMs - 15 * 60_000, toMs: Date.now() });
    let index = resume?.index ?? 0;
    if (!resume) await setShare(steps[0], 'policy');
    const canaryFrom = resume?.canaryFromMs ?? Date.now();
    let stepFrom = resume?.stepFromMs ?? canaryFrom;
    deadlines = resume?.deadlines ?? { stepFromMs: stepFrom, stepPassed: false, rolloutPassed: false };
    while (steps[index] < 10_000) {
      await maybeContinue({
        phase: 'canary',
        index,
        baselineMs: baseline,
        canaryFromMs: canaryFrom,
        stepFromMs: stepFrom,
        deadlines,
      });
      const batch = await tickWhileScoring(canaryFrom, `evaluate canary at ${bpsText(steps[index])}`);
      await checkTriggers('canary', canaryFrom);
      if (promoteRequest) {
        await batch.settle();
        const { toFull, actor } = promoteRequest;
        promoteRequest = undefined;
        restartStepDeadline(); // a person acted: a deadline's hold ends
        index = toFull ? steps.length - 1 : index + 1;
        if (steps[index] >= 10_000) {
          promotedBy = actor;
          return; // promotion itself happens after the approval gate
        }
        await setShare(steps[index], actor);
        stepFrom = Date.now();
        restartStepDeadline();
        continue;
      }
      const scored = await batch.result();
      const stats = await acts.canaryStats.executeWithOptions(
        { ...DURABLE, summary: 'stable vs canary statistics' },
        [
          {
            route,
            fromMs: canaryFrom,
            stepFromMs: stepFrom,
            toMs: Date.now(),
            slowThresholdMs: baseline,
            ...(scored ? { candidateOwnEvidence: true } : {}),
          },
        ],
      );
      const policyInput = {
        ...stats,
        context: {
          shareBps: steps[index],
          stepIndex: index,
          steps,
          isFinalStep: steps[index + 1] === 10_000,
        },
        config: resolvedAtStart || patched(FINAL_GATE_ERRORS) ? canaryPolicy : withoutErrorGate(canaryPolicy),
      };
      const decision = decide(policyInput);
      if (scored)
        decision.reasons.push(...evidenceReasons(status.scoring!, scored, stats.fallbacks, candidateName));
      noteHold(decision, () =>
        estimate({
          ...policyInput,
          stepElapsedMs: Date.now() - stepFrom,
          canaryElapsedMs: Date.now() - canaryFrom,
          checkIntervalMs: spec.evaluation.interval,
        }),
      );
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
        restartStepDeadline();
      } else if (bounded) {
        await checkDeadlines(deadlines);
      }
    }
  }

  /**
   * The progress deadlines of a canary that did not advance at this check. 'rollback' rolls back; 'hold'
   * pauses the rollout at its share and alerts, until a person promotes, resumes or rolls back. Each
   * deadline acts once (the step's again after the share changed or a person resumed).
   */
  async function checkDeadlines(d: DeadlineState): Promise<void> {
    if (status.paused) return; // a person (or a deadline already) holds it
    const now = Date.now();
    const { step: stepMs, rollout: rolloutMs, action } = spec.progressDeadline;
    let kind: 'step' | 'rollout';
    let what: string;
    if (!d.rolloutPassed && now - startedMs >= rolloutMs) {
      d.rolloutPassed = true;
      kind = 'rollout';
      what = `not promoted ${formatDuration(now - startedMs)} after it started (progressDeadline.rollout ${formatDuration(rolloutMs)})`;
    } else if (!d.stepPassed && now - d.stepFromMs >= stepMs) {
      d.stepPassed = true;
      kind = 'step';
      what = `the step at ${bpsText(status.shareBps)} has not advanced in ${formatDuration(now - d.stepFromMs)} (progressDeadline.step ${formatDuration(stepMs)})`;
    } else {
      return;
    }
    status.deadline = {
      kind,
      at: new Date(now).toISOString(),
      action,
      ...(action === 'hold' ? { holding: true } : {}),
    };
    const stats = {
      elapsedMs: kind === 'step' ? now - d.stepFromMs : now - startedMs,
      deadlineMs: kind === 'step' ? stepMs : rolloutMs,
    };
    await record('canary', {
      action: action === 'hold' ? 'hold' : 'rollback',
      policy: 'progress-deadline',
      reasons: [`progress deadline passed: ${what}`],
      stats,
    });
    if (action === 'rollback') {
      // The rollback alert names the deadline; nothing waits on another alert before the routing is restored.
      throw new RollbackRequested(`progress deadline passed: ${what}`, 'progress-deadline', {
        deadline: kind,
        ...stats,
      });
    }
    status.paused = true;
    publish();
    void alert(
      'deadline',
      `Rollout of ${candidateName} on ${route} held at ${bpsText(status.shareBps)}: ${what}. ` +
        `Promote it, resume it or roll it back (model-rollout promote|resume|rollback ${route})`,
      { deadline: kind, ...stats },
    );
  }

  /** A new step (or a person's resume): the step's deadline counts afresh, and a deadline's hold ends. */
  function restartStepDeadline(): void {
    if (!deadlines) return;
    deadlines.stepFromMs = Date.now();
    deadlines.stepPassed = false;
    if (status.deadline?.holding) {
      status.deadline = { ...status.deadline, holding: false };
      status.paused = false;
    }
  }

  async function approvalGate(resume?: Extract<RolloutPosition, { phase: 'approval' }>): Promise<void> {
    if (!spec.approval.required) return;
    if (!resume) {
      setPhase('awaiting-approval');
      status.awaitingApproval = true;
      publish();
      void alert(
        'approval-needed',
        `Rollout of ${candidateName} on ${route} waits for approval (signal "approve")`,
      );
    }
    const deadline = resume?.deadlineMs ?? Date.now() + spec.approval.timeout;
    const since = resume?.sinceMs ?? Date.now();
    while (!approvedBy) {
      await maybeContinue({ phase: 'approval', sinceMs: since, deadlineMs: deadline });
      const timedOut = Date.now() >= deadline;
      const noApproval = `no approval within ${formatDuration(spec.approval.timeout)}`;
      if (timedOut && bounded && spec.approval.onTimeout !== 'hold') {
        // The timeout ends the wait: the spec's action is applied, and said.
        const action = spec.approval.onTimeout;
        status.deadline = { kind: 'approval', at: new Date().toISOString(), action };
        await record(status.phase, {
          action: action === 'approve' ? 'promote-step' : 'rollback',
          policy: 'progress-deadline',
          reasons: [`${noApproval}: approval.onTimeout is '${action}'`],
          stats: { deadlineMs: spec.approval.timeout },
        });
        if (action === 'rollback')
          throw new RollbackRequested(noApproval, 'approval-timeout', { deadline: 'approval' });
        approvedBy = 'approval-timeout';
        void alert(
          'deadline',
          `Rollout of ${candidateName} on ${route}: ${noApproval}; promoting it as approval.onTimeout says`,
          { deadline: 'approval' },
        );
        break;
      }
      if (timedOut && spec.approval.onTimeout === 'rollback') {
        throw new RollbackRequested(noApproval, 'approval-timeout');
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

  async function bake(resume?: Extract<RolloutPosition, { phase: 'bake' }>): Promise<void> {
    if (!resume) setPhase('baking');
    const since = resume?.sinceMs ?? Date.now();
    const end = resume?.endMs ?? since + spec.bake.duration;
    if (!resume) lastTriggerCheck = 0;
    while (Date.now() < end) {
      await maybeContinue({ phase: 'bake', sinceMs: since, endMs: end });
      await tick(
        Math.min(spec.triggers.interval, end - Date.now()),
        `bake (${formatDuration(spec.bake.duration)})`,
      );
      promoteRequest = undefined; // nothing left to promote
      await checkTriggers('stable', since);
    }
  }

  // ---- helpers -----------------------------------------------------------------------------------------

  /**
   * Continues as new when the server suggests it, at the top of a phase's loop (no activity of the story
   * running, the scoring batch settled). Not while a handler runs: the promote and approve Updates answer
   * only once the story acted, so waiting for them here would wait forever; the next check tries again.
   * Alerts still on their way are delivered first. The story then goes on in the next run from `at`.
   */
  async function maybeContinue(position: RolloutPosition): Promise<void> {
    if (!workflowInfo().continueAsNewSuggested || rollbackRequest || !allHandlersFinished()) return;
    if (!patched(CONTINUE_AS_NEW)) return;
    await Promise.all([...pendingAlerts]);
    if (rollbackRequest || !allHandlersFinished()) return;
    const generation = (status.generation ?? 0) + 1;
    const carry: RolloutCarry = {
      generation,
      firstRunId: keyBase,
      legacyWebhookUrl,
      legacyApprovalHold,
      bounded,
      // A rollout from before POLICY_RESOLVED_AT_START carries what it decides on now, resolved.
      policy: resolvePolicyConfig(policy ?? spec.policy),
      claim: { stable: claim.stable, stableSlot: previousStableSlot, candidateSlot },
      startedMs,
      step,
      promotedBy,
      lastEvidenceMs,
      lastTriggerCheckMs: lastTriggerCheck,
      pending: { promote: promoteRequest, approvedBy },
      at: position,
      status: { ...status, generation, firstRunId: keyBase },
    };
    log.info('continuing as new', {
      generation,
      phase: position.phase,
      historyLength: workflowInfo().historyLength,
    });
    await continueAsNew<typeof rolloutWorkflow>(input, carry);
  }

  /** Updates still waiting (a rollback or a promote answered with the outcome) answer before the run closes. */
  async function closing(result: RolloutOutcome): Promise<RolloutOutcome> {
    await condition(allHandlersFinished);
    return result;
  }

  /** Keeps `status.hold` current: since when the share is held, by what, and for how long (an estimate). */
  function noteHold(decision: Decision, estimateNow: () => HoldEstimate | null): void {
    if (decision.action !== 'hold') {
      status.hold = undefined;
      return;
    }
    let e: HoldEstimate | null = null;
    try {
      e = estimateNow();
    } catch (err) {
      log.warn('hold estimate failed', { error: (err as Error).message }); // an estimate never stops a rollout
    }
    const same = status.hold?.shareBps === status.shareBps;
    const since = same ? status.hold!.since : new Date().toISOString();
    status.hold = {
      since,
      shareBps: status.shareBps,
      estimate: e ?? undefined,
      expectedAt: e?.etaMs != null ? new Date(Date.now() + e.etaMs).toISOString() : undefined,
      alerted: same ? status.hold!.alerted : undefined,
    };
    // A hold that lasts is worth a word to the people waiting on it: once per hold, with what it waits for.
    const heldMs = Date.now() - Date.parse(since);
    if (!status.hold.alerted && heldMs >= spec.alerts.holdAfter && patched(HOLD_ALERT)) {
      status.hold.alerted = true;
      void alert(
        'hold',
        `Rollout of ${candidateName} on ${route} held at ${bpsText(status.shareBps)} for ${formatDuration(heldMs)}: ` +
          (e?.summary ?? decision.reasons[0] ?? 'waiting for evidence'),
        { since, expectedAt: status.hold.expectedAt ?? null },
      );
    }
  }

  /**
   * The wait between checks. With the pipeline the scoring batch runs during the wait, bounded to most of
   * the interval, so a judge that takes seconds has the whole interval to keep up; older rollouts score
   * after the wait, as they did (and not at all on a tick a promote signal ended).
   */
  async function tickWhileScoring(
    fromMs: number,
    summary: string,
  ): Promise<{ result(): Promise<ScoreReport | undefined>; settle(): Promise<void> }> {
    if (!patched(SCORING_PIPELINE)) {
      await tick(spec.evaluation.interval, summary);
      return { result: () => scoreAnswers(fromMs), settle: async () => {} };
    }
    const batch = scoreAnswers(fromMs);
    await tick(spec.evaluation.interval, summary); // a rollback throws here; the batch then ends by itself
    return { result: () => batch, settle: async () => void (await batch) };
  }

  /**
   * One scoring batch. Rollouts from before the pipeline patch call it as they did and get undefined;
   * newer ones get this batch's report, and status.scoring carries the running totals.
   */
  async function scoreAnswers(fromMs: number): Promise<ScoreReport | undefined> {
    const evaluation = spec.evaluation;
    if (!patched(SCORING_PIPELINE)) {
      await acts.scoreAnswers.executeWithOptions({ ...DURABLE, summary: 'score answers' }, [
        { route, fromMs, limit: evaluation.scoreBatch, judge: evaluation.judge },
      ]);
      return undefined;
    }
    const totals = (status.scoring ??= newScoringStatus(evaluation.budgetUsd));
    lastEvidenceMs ??= fromMs;
    let report: ScoreReport;
    try {
      report = await scoring.scoreAnswers.executeWithOptions({ summary: 'score answers' }, [
        {
          route,
          fromMs,
          limit: evaluation.scoreBatch,
          judge: evaluation.judge,
          evaluators: evaluation.evaluators,
          concurrency: evaluation.concurrency,
          maxBatchMs: Math.min(240_000, Math.max(5_000, evaluation.interval * 0.8)),
          judgeTimeoutMs: evaluation.judgeTimeout,
          budgetUsd: evaluation.budgetUsd,
          sample: evaluation.sample,
        },
      ]);
      totals.batchError = undefined;
    } catch (err) {
      // The evidence stays what it was; the policy decides on it, and the reason is shown.
      const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error) : (err as Error);
      totals.batchError = `scoring batch failed: ${cause.message}`.slice(0, 300);
      report = emptyReport();
    }
    const now = Date.now();
    const folded = foldReport(totals, report, {
      nowIso: new Date(now).toISOString(),
      sinceEvidenceMs: now - lastEvidenceMs,
      noEvidenceAfterMs: evaluation.noEvidenceAfter,
    });
    if (folded.evidence) lastEvidenceMs = now;
    if (folded.becameMissing)
      void alert(
        'no-quality-evidence',
        `No quality evidence for ${candidateName} on ${route} for ${formatDuration(now - lastEvidenceMs)}: ${noEvidenceCause(totals)}`,
        { failures: totals.failures, scored: totals.scored },
      );
    publish();
    return report;
  }

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
      { ...DURABLE, summary: `trigger metrics (${tag})` },
      [
        {
          route,
          tag,
          sinceMs,
          nowMs: now,
          triggers,
          target: tag === 'stable' ? candidateName : undefined,
          ...(status.scoring && tag === 'canary' ? { candidateOwnEvidence: true } : {}),
        },
      ],
    );
    const { fired, results } = evaluateTriggers(triggers, metrics);
    status.triggers = results;
    if (fired.length > 0) {
      await record(status.phase, {
        action: 'rollback',
        policy: 'triggers',
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
    status.hold = undefined;
    status.steps.push({ at: new Date().toISOString(), fromBps: from, toBps: bps, by });
    publish();
  }

  async function changeRouting(patch: Record<string, unknown>, reason: string): Promise<void> {
    step += 1;
    status.routingVersion = await acts.applyRouting.executeWithOptions({ ...DURABLE, summary: reason }, [
      {
        route,
        owner: workflowId,
        idempotencyKey: `${keyBase}:${step}`,
        expectedVersion: status.routingVersion,
        patch,
        actor: workflowId,
        reason,
      },
    ]);
  }

  /** Ends ownership of a route this rollout leaves as it is (shadow-only report, or a completed rollout). */
  async function releaseRoute(reason: string): Promise<void> {
    await acts.releaseRoute({
      route,
      owner: workflowId,
      idempotencyKey: `${keyBase}:release`,
      expectedVersion: status.routingVersion,
      actor: workflowId,
      reason,
    });
  }

  async function restore(reason: string, key: string): Promise<void> {
    status.routingVersion = await acts.restoreStable.executeWithOptions(
      { ...DURABLE, summary: `restore ${route} to its stable slot` },
      [
        {
          route,
          owner: workflowId,
          idempotencyKey: `${keyBase}:restore:${key}`,
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
    const at = new Date().toISOString();
    status.decisions.push({ ...decision, at, phase, shareBps: status.shareBps });
    if (status.decisions.length > 10) status.decisions.shift();
    status.decisionSummary = countDecision(status.decisionSummary, { ...decision, at });
    publish();
    await acts.recordDecision.executeWithOptions(
      { ...DURABLE, summary: `${decision.action}: ${decision.reasons[0] ?? ''}`.slice(0, 200) },
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

  function alert(kind: AlertEvent['kind'], title: string, details?: Record<string, unknown>): Promise<void> {
    const sent = (async () => {
      try {
        const target = spec.alerts.webhookUrl ?? channelsFor(spec.alerts.channels, kind);
        await alerts.sendAlert(target, { kind, route, workflowId, title, details });
      } catch (err) {
        log.warn('alert could not be delivered', { kind, error: (err as Error).message });
      }
    })();
    pendingAlerts.add(sent);
    void sent.finally(() => pendingAlerts.delete(sent));
    return sent;
  }

  function setPhase(phase: Phase): void {
    status.phase = phase;
    if (phase !== 'canary') status.hold = undefined;
    publish();
  }

  /**
   * Search attributes, memo and the UI's "current details": the rollout's story at a glance. Each upsert is
   * an event in the history, so (since the patch) only what changed is upserted.
   */
  function publish(): void {
    const attributes = [
      { key: RolloutRoute, value: route },
      { key: RolloutPhase, value: status.phase },
      { key: RolloutCandidate, value: candidateName },
      { key: RolloutStrategy, value: spec.strategy },
      { key: CanaryBasisPoints, value: status.shareBps },
    ];
    const last = status.decisions[status.decisions.length - 1];
    const memo = {
      route,
      candidate: candidateName,
      stable: status.stable,
      phase: status.phase,
      shareBps: status.shareBps,
      lastDecision: last?.reasons[0] ?? null,
    };
    const onlyChanges = patched(PUBLISH_CHANGES_ONLY);
    const now = { attributes: JSON.stringify(attributes.map((a) => a.value)), memo: JSON.stringify(memo) };
    if (!onlyChanges || now.attributes !== published?.attributes) upsertSearchAttributes(attributes);
    if (!onlyChanges || now.memo !== published?.memo) upsertMemo(memo);
    published = now;
    setCurrentDetails(
      [
        `**${route}**: ${status.stable || '?'} (stable) -> ${candidateName} (candidate), ${spec.strategy}`,
        `phase **${status.phase}**${status.paused ? ' (paused)' : ''}, canary share **${bpsText(status.shareBps)}**`,
        status.hold?.estimate ? `held since ${status.hold.since}: ${status.hold.estimate.summary}` : '',
        status.scoring?.noQualityEvidence
          ? `**no quality evidence**: ${noEvidenceCause(status.scoring)}`
          : '',
        status.scoring ? scoringLine(status.scoring) : '',
        last ? `last decision: ${last.action} - ${last.reasons.join('; ')}` : '',
        status.deadline?.holding
          ? `**held by its ${status.deadline.kind} progress deadline**: promote, resume or roll back`
          : '',
        outcome ? `outcome: ${outcome.result} - ${outcome.reason}` : '',
        status.generation
          ? `run ${status.generation + 1} of this rollout (continued as new; ${status.decisionSummary?.total ?? 0} decisions in all)`
          : '',
      ]
        .filter(Boolean)
        .join('\n\n'),
    );
  }
}

function bpsText(bps: number): string {
  return `${bps / 100}%`;
}

function assertReason(): never {
  throw new Error('rollback needs a reason');
}
