import {
  ApplicationFailure,
  CancellationScope,
  condition,
  ContinueAsNew,
  isCancellation,
  setHandler,
  uuid4,
} from '@temporalio/workflow';
import { formatDuration } from '../src/decision/config/duration';
import { parseRolloutSpec, type RolloutSpec } from '../src/decision/config/rollout-spec';
import { entryOf } from '../src/decision/config/steps';
import type { PolicyConfig } from '../src/decision/policy';
import { ROUTING } from './activity-options';
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
import { acts, local } from './run/activities';
import { checkGateNames } from './run/gates';
import type { RolloutCarry } from './run/carry';
import { RollbackRequested, RolloutRun } from './run/run';
import { executorOf } from './steps';

/**
 * One rollout of a candidate model onto a route: the steps of its list, one after the other (shadow, canary
 * shares, pauses, approvals, the promotion, the bake; src/decision/config/steps), then the end: a completed
 * rollout leaves the route to its guardian, a list that never promoted ends with its shadow report. A
 * rollback (by the policy, a trigger, a deadline or a person) can happen at any point and restores the
 * previous stable slot. When its history grows long it continues as new (`carried` is then what the
 * previous run handed over) and resumes the step it was in.
 *
 * The run's state and what every step does with it: run/run.ts; each step kind: steps/<kind>.ts; how to
 * change this code once rollouts are running somewhere: VERSIONING.md.
 */
export async function rolloutWorkflow(input: unknown, carried?: RolloutCarry): Promise<RolloutOutcome> {
  let spec: RolloutSpec;
  try {
    spec = parseRolloutSpec(input);
  } catch (err) {
    throw ApplicationFailure.nonRetryable((err as Error).message, 'InvalidSpec');
  }
  const r = new RolloutRun({ input, spec, carried });

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
      const at = r.index;
      requestPromote(req);
      // Answered once the rollout took it: the step it ended is behind it, and the next one has made its
      // routing change and waits.
      await condition(
        () => r.outcome !== undefined || (r.promoteRequest === undefined && r.index !== at && r.waiting),
      );
      return r.status;
    },
    {
      validator: (_req: PromoteInput) => {
        refuseWhenEnded();
        if (r.status.awaitingApproval)
          throw new Error(`it waits for approval; approve it with 'model-rollout approve ${r.route}'`);
        if (r.promoted)
          throw new Error(`it is already promoted (phase ${r.status.phase}); nothing left to promote`);
      },
    },
  );
  setHandler(
    approveUpdate,
    async (by) => {
      approve(by);
      if (r.status.awaitingApproval) {
        const at = r.index;
        await condition(() => r.outcome !== undefined || (r.index !== at && r.waiting));
      }
      return r.status;
    },
    { validator: refuseWhenEnded },
  );

  // ---- the story -------------------------------------------------------------------------------------
  if (!carried) {
    // Recorded in the history: the policy every decision of this rollout uses, whatever the defaults become.
    r.policy = await local.resolvePolicy.executeWithOptions({ summary: 'resolve the policy' }, [
      (input as { policy?: PolicyConfig }).policy ?? {},
    ]);
    r.status.policy = r.policy;
    // Hooks and metric sources are named in the spec and configured on the worker: an unknown name is
    // refused by name before the route is claimed (nothing is asked when the spec names none).
    const unknown = await checkGateNames(r);
    if (unknown.length > 0) throw ApplicationFailure.nonRetryable(unknown.join('; '), 'InvalidSpec');
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
    r.claim = {
      stable: claimed.stable,
      stableSlot: claimed.stableSlot,
      candidateSlot: claimed.candidateSlot,
    };
  }
  r.publish();

  try {
    for (let i = r.index; i < r.steps.length; i++) {
      const { kind, value, def } = entryOf(r.steps[i]);
      const resumed = carried !== undefined && i === carried.at.index;
      // A `promote --full` passes every step before the promotion, up to a gate.
      if (r.toFull && !def.gate && def.share?.(value as never) !== 10_000) continue;
      r.enterStep(i, resumed);
      await executorOf(kind).run(r, value, {
        index: i,
        resume: resumed ? (carried.at.state ?? undefined) : undefined,
      });
      r.waiting = false;
    }
    return r.closing(await complete(r));
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

/** The end of the list: the promoted candidate is left to the route's guardian, or the report is the outcome. */
async function complete(r: RolloutRun): Promise<RolloutOutcome> {
  if (!r.promoted) {
    const report = r.status.shadow!;
    await r.releaseRoute(`rollout finished with its shadow report: ${report.recommendation}`);
    return r.finish({
      result: 'shadow-report',
      reason: `shadow report: ${report.recommendation} (${report.reasons[0] ?? ''})`,
      shadow: report,
    });
  }
  await r.releaseRoute(`rollout completed: ${r.candidateName} is stable`);
  await acts.ensureGuardian({
    route: r.route,
    triggers: r.triggers,
    intervalMs: r.spec.triggers.interval,
    alertChannels: r.spec.alerts.channels,
  });
  await r.alert('completed', `${r.candidateName} is now stable on ${r.route}`);
  const baked = r.steps
    .map((s) => entryOf(s))
    .filter((e) => e.kind === 'bake')
    .reduce((ms, e) => ms + (e.value as { duration: number }).duration, 0);
  return r.finish({
    result: 'completed',
    reason: `${r.candidateName} promoted to 100%${baked > 0 ? ` and baked for ${formatDuration(baked)}` : ''}`,
  });
}

function assertReason(): never {
  throw new Error('rollback needs a reason');
}
