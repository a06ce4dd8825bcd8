import {
  ApplicationFailure,
  CancellationScope,
  condition,
  ContinueAsNew,
  isCancellation,
  patched,
  setHandler,
  uuid4,
} from '@temporalio/workflow';
import { formatDuration } from '../src/decision/config/duration';
import { parseRolloutSpec, type RolloutSpec } from '../src/decision/config/rollout-spec';
import { ROUTING } from './activity-options';
import { acts, local } from './rollout-activities';
import { canaryPhase } from './rollout-canary';
import type { RolloutCarry } from './rollout-carry';
import { approvalGate, bake, promote } from './rollout-gates';
import {
  ALERT_CHANNELS,
  BOUNDED_ROLLOUTS,
  COMPLETED_ALERT_AWAITED,
  POLICY_RESOLVED_AT_START,
} from './rollout-patches';
import { RollbackRequested, RolloutRun } from './rollout-run';
import { shadowPhase } from './rollout-shadow';
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
} from './messages';

/**
 * One rollout of a candidate model onto a route: an optional shadow phase, then either canary doubling or a
 * blue-green switch, an optional human approval, promotion, and a bake under the triggers. A rollback (by
 * the policy, a trigger or a person) can happen at any point and restores the previous stable slot. When
 * its history grows long it continues as new (`carried` is then what the previous run handed over).
 *
 * The run's state and its common steps: rollout-run.ts; the phases: rollout-shadow.ts, rollout-canary.ts,
 * rollout-gates.ts; search attributes, memo and current details: rollout-publish.ts; scoring:
 * rollout-scoring.ts; patch ids: rollout-patches.ts.
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
  const r = new RolloutRun({
    input,
    spec,
    carried,
    bounded,
    legacyWebhookUrl,
    legacyApprovalHold,
    policy: carried?.policy,
  });

  // ---- messages --------------------------------------------------------------------------------------
  setHandler(statusQuery, () => r.status);
  const pause = (by?: ActorInput) => {
    if (r.status.paused || r.outcome) return;
    r.status.paused = true;
    void r.alert('pause', `Rollout of ${r.candidateName} on ${r.route} paused by ${by?.actor ?? 'someone'}`, {
      reason: by?.reason,
    });
    r.publish();
  };
  const resume = (by?: ActorInput) => {
    if (!r.status.paused) return;
    r.status.paused = false;
    r.restartStepDeadline(); // a person took it back: the step gets its full deadline again
    void r.alert(
      'resume',
      `Rollout of ${r.candidateName} on ${r.route} resumed by ${by?.actor ?? 'someone'}`,
    );
    r.publish();
  };
  setHandler(pauseSignal, pause);
  setHandler(resumeSignal, resume);
  const requestRollback = (req: RollbackInput) => {
    r.rollbackRequest ??= new RollbackRequested(req?.reason || 'manual rollback', req?.actor ?? 'someone', {
      manual: true,
    });
  };
  setHandler(rollbackSignal, requestRollback);
  setHandler(
    rollbackUpdate,
    async (req) => {
      requestRollback(req);
      await condition(() => r.outcome !== undefined);
      return r.outcome!;
    },
    { validator: (req) => void (req?.reason ? undefined : assertReason()) },
  );
  const requestPromote = (req?: PromoteInput) => {
    r.promoteRequest = { toFull: !!req?.toFull, actor: req?.actor ?? 'someone' };
  };
  const approve = (by?: ActorInput) => {
    r.approvedBy = by?.actor ?? 'someone';
  };
  setHandler(promoteSignal, requestPromote);
  setHandler(approveSignal, approve);

  // The Updates: refusals come back to the caller as errors naming the reason; answers are the new status.
  const refuseWhenEnded = (_input?: unknown) => {
    if (r.outcome) throw new Error(`the rollout has ended (${r.outcome.result}: ${r.outcome.reason})`);
  };
  setHandler(
    pauseUpdate,
    (by) => {
      pause(by);
      return r.status;
    },
    { validator: refuseWhenEnded },
  );
  setHandler(
    resumeUpdate,
    (by) => {
      resume(by);
      return r.status;
    },
    { validator: refuseWhenEnded },
  );
  setHandler(
    promoteUpdate,
    async (req) => {
      const { phase, steps } = { phase: r.status.phase, steps: r.status.steps.length };
      requestPromote(req);
      // Answered once the rollout took the step (or left the phase): the step is taken between two checks.
      await condition(
        () =>
          r.outcome !== undefined ||
          (r.promoteRequest === undefined &&
            r.status.phase !== 'promoting' &&
            (r.status.phase !== phase || r.status.steps.length !== steps)),
      );
      return r.status;
    },
    {
      validator: (_req: PromoteInput) => {
        refuseWhenEnded();
        if (r.status.awaitingApproval)
          throw new Error(`it waits for approval; approve it with 'model-rollout approve ${r.route}'`);
        if (r.status.phase === 'promoting' || r.status.phase === 'baking')
          throw new Error(`it is already promoted (phase ${r.status.phase}); nothing left to promote`);
      },
    },
  );
  setHandler(
    approveUpdate,
    async (by) => {
      approve(by);
      if (r.status.awaitingApproval) {
        await condition(
          () => r.outcome !== undefined || (!r.status.awaitingApproval && r.status.phase !== 'promoting'),
        );
      }
      return r.status;
    },
    { validator: refuseWhenEnded },
  );

  // ---- the story -------------------------------------------------------------------------------------
  // A continued run holds the claim of the first; it resumes the phase it was in (`at`).
  const at = carried?.at;
  if (!carried && patched(POLICY_RESOLVED_AT_START)) {
    // Recorded in the history: the config every decision of this rollout uses, whatever the defaults become.
    const resolved = await local.resolvePolicy.executeWithOptions({ summary: 'resolve the policy config' }, [
      r.spec.policy,
    ]);
    r.policy = resolved;
    r.status.policy = resolved;
  }
  if (!carried) {
    const claimed = await acts.claimRoute.executeWithOptions(
      { ...ROUTING, summary: `claim ${r.route} for ${r.candidateName}` },
      [
        {
          route: r.route,
          owner: r.workflowId,
          idempotencyKey: `${r.keyBase}:claim`,
          candidate: r.spec.candidate,
          salt: uuid4(),
          actor: r.spec.actor,
        },
      ],
    );
    r.status.routingVersion = claimed.version;
    r.status.stable = claimed.stable;
    r.previousStableSlot = claimed.stableSlot;
    r.candidateSlot = claimed.candidateSlot;
    r.claim = {
      stable: claimed.stable,
      stableSlot: claimed.stableSlot,
      candidateSlot: claimed.candidateSlot,
    };
  }
  if (!carried) r.startedMs = Date.now();
  r.publish();

  try {
    if (r.spec.shadow.enabled && (!at || at.phase === 'shadow')) {
      const report = await shadowPhase(r, at?.phase === 'shadow' ? at : undefined);
      if (r.spec.strategy === 'shadow-only') {
        await r.changeRouting({ shadowRate: 0 }, 'shadow phase over');
        await r.releaseRoute(`shadow-only rollout finished: ${report.recommendation}`);
        return r.closing(
          r.finish({
            result: 'shadow-report',
            reason: `shadow report: ${report.recommendation} (${report.reasons[0] ?? ''})`,
            shadow: report,
          }),
        );
      }
      const blocks =
        (r.spec.shadow.require === 'promote' && report.recommendation !== 'promote') ||
        (r.spec.shadow.require === 'not-worse' && report.recommendation === 'keep-stable');
      if (blocks)
        throw new RollbackRequested(`shadow report says ${report.recommendation}`, 'shadow', {
          shadow: report,
        });
      await r.changeRouting({ shadowRate: 0 }, 'shadow phase over');
    }

    if (r.spec.strategy === 'canary' && (!at || at.phase === 'shadow' || at.phase === 'canary'))
      await canaryPhase(r, at?.phase === 'canary' ? at : undefined);
    if (at?.phase !== 'bake') {
      await approvalGate(r, at?.phase === 'approval' ? at : undefined);
      await promote(r);
    }
    await bake(r, at?.phase === 'bake' ? at : undefined);

    await r.releaseRoute(`rollout completed: ${r.candidateName} is stable`);
    await acts.ensureGuardian({
      route: r.route,
      triggers: r.triggers,
      intervalMs: r.spec.triggers.interval,
      alertChannels: r.spec.alerts.channels,
      ...(r.spec.alerts.webhookUrl ? { alertWebhook: r.spec.alerts.webhookUrl } : {}),
    });
    const completed = `${r.candidateName} is now stable on ${r.route}`;
    // Before this patch the alert was scheduled in the workflow's last task and never ran.
    if (patched(COMPLETED_ALERT_AWAITED)) await r.alert('completed', completed);
    else void r.alert('completed', completed);
    return r.closing(
      r.finish({
        result: 'completed',
        reason: `${r.candidateName} promoted to 100% and baked for ${formatDuration(r.spec.bake.duration)}`,
      }),
    );
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err; // the story goes on in the next run
    if (err instanceof RollbackRequested) return r.closing(await r.rollBack(err));
    if (isCancellation(err)) {
      // Cancellation must still leave the route on its stable model, so the cleanup cannot be cancelled.
      await CancellationScope.nonCancellable(async () => {
        await r.restore('rollout cancelled', 'cancel');
        r.finish({ result: 'cancelled', reason: 'rollout cancelled; stable routing restored' });
      });
      throw err;
    }
    // An unexpected failure (say, the route changed under us): restore the stable routing, then fail loudly.
    await CancellationScope.nonCancellable(() =>
      r.restore(`rollout failed: ${(err as Error).message}`, 'failure'),
    );
    throw err;
  }
}

function assertReason(): never {
  throw new Error('rollback needs a reason');
}
