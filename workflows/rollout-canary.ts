/**
 * The canary phase: the share walks the spec's ladder as the policy decides on stable vs canary statistics,
 * under the triggers and (bounded rollouts) the progress deadlines.
 */
import { patched } from '@temporalio/workflow';
import { formatDuration } from '../src/decision/config/duration';
import {
  decide,
  estimate,
  pinSequentialDefaults,
  SEQUENTIAL_DEFAULTS_V1,
  type PolicyConfig,
} from '../src/decision/policy';
import { evidenceReasons } from '../src/decision/scoring/evidence';
import { DURABLE } from './activity-options';
import { acts } from './rollout-activities';
import type { DeadlineState, RolloutPosition } from './rollout-carry';
import { FINAL_GATE_ERRORS, PROMOTION_V2, STEP_WINDOWS_BY_VERSION } from './rollout-patches';
import { bpsText, noteHold } from './rollout-publish';
import { RollbackRequested, type RolloutRun } from './rollout-run';
import { tickWhileScoring } from './rollout-scoring';

/** The policy config without the final gate's error check (what rollouts before the patch decided on). */
function withoutErrorGate(policy: PolicyConfig): PolicyConfig {
  const sequential = policy.sequential ?? {};
  return { ...policy, sequential: { ...sequential, finalGate: { ...sequential.finalGate, errorRatio: 0 } } };
}

export async function canaryPhase(
  r: RolloutRun,
  resume?: Extract<RolloutPosition, { phase: 'canary' }>,
): Promise<void> {
  if (!resume) r.setPhase('canary');
  // Rollouts without a config resolved at start pin it here, once (see PROMOTION_V2).
  const resolvedAtStart = r.policy !== undefined;
  r.policy ??= patched(PROMOTION_V2)
    ? r.spec.policy
    : pinSequentialDefaults(r.spec.policy, SEQUENTIAL_DEFAULTS_V1);
  const canaryPolicy = r.policy;
  const steps = r.spec.canary.steps;
  // The version each step's routing change produced (undefined: steps cut by the workflow's clock).
  const stepVersions = resume ? resume.stepVersions : patched(STEP_WINDOWS_BY_VERSION) ? [] : undefined;
  const baseline = resume
    ? resume.baselineMs
    : await acts.baselineP95({ route: r.route, fromMs: r.startedMs - 15 * 60_000, toMs: Date.now() });
  let index = resume?.index ?? 0;
  if (!resume) {
    await r.setShare(steps[0], 'policy');
    stepVersions?.push(r.status.routingVersion);
  }
  const canaryFrom = resume?.canaryFromMs ?? Date.now();
  let stepFrom = resume?.stepFromMs ?? canaryFrom;
  r.deadlines = resume?.deadlines ?? { stepFromMs: stepFrom, stepPassed: false, rolloutPassed: false };
  while (steps[index] < 10_000) {
    await r.maybeContinue({
      phase: 'canary',
      index,
      baselineMs: baseline,
      canaryFromMs: canaryFrom,
      stepFromMs: stepFrom,
      deadlines: r.deadlines,
      ...(stepVersions ? { stepVersions } : {}),
    });
    const batch = await tickWhileScoring(r, canaryFrom, `evaluate canary at ${bpsText(steps[index])}`);
    await r.checkTriggers('canary', canaryFrom);
    if (r.promoteRequest) {
      await batch.settle();
      const { toFull, actor } = r.promoteRequest;
      r.promoteRequest = undefined;
      r.restartStepDeadline(); // a person acted: a deadline's hold ends
      index = toFull ? steps.length - 1 : index + 1;
      if (steps[index] >= 10_000) {
        r.promotedBy = actor;
        return; // promotion itself happens after the approval gate
      }
      await r.setShare(steps[index], actor);
      stepVersions?.push(r.status.routingVersion);
      stepFrom = Date.now();
      r.restartStepDeadline();
      continue;
    }
    const scored = await batch.result();
    const stats = await acts.canaryStats.executeWithOptions(
      { ...DURABLE, summary: 'stable vs canary statistics' },
      [
        {
          route: r.route,
          fromMs: canaryFrom,
          stepFromMs: stepFrom,
          toMs: Date.now(),
          slowThresholdMs: baseline,
          ...(scored ? { candidateOwnEvidence: true } : {}),
          ...(stepVersions ? { stepVersions: [...stepVersions] } : {}),
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
      decision.reasons.push(...evidenceReasons(r.status.scoring!, scored, stats.fallbacks, r.candidateName));
    noteHold(r, decision, () =>
      estimate({
        ...policyInput,
        stepElapsedMs: Date.now() - stepFrom,
        canaryElapsedMs: Date.now() - canaryFrom,
        checkIntervalMs: r.spec.evaluation.interval,
      }),
    );
    await r.record('canary', decision);
    if (decision.action === 'rollback') {
      throw new RollbackRequested(
        `canary policy (${decision.policy}): ${decision.reasons[0] ?? 'quality drop'}`,
        'policy',
        decision.stats,
      );
    }
    if (decision.action === 'promote-step' && !r.status.paused) {
      index += 1;
      if (steps[index] >= 10_000) return;
      await r.setShare(steps[index], 'policy');
      stepVersions?.push(r.status.routingVersion);
      stepFrom = Date.now();
      r.restartStepDeadline();
    } else if (r.bounded) {
      await checkDeadlines(r, r.deadlines);
    }
  }
}

/**
 * The progress deadlines of a canary that did not advance at this check. 'rollback' rolls back; 'hold'
 * pauses the rollout at its share and alerts, until a person promotes, resumes or rolls back. Each
 * deadline acts once (the step's again after the share changed or a person resumed).
 */
export async function checkDeadlines(r: RolloutRun, d: DeadlineState): Promise<void> {
  if (r.status.paused) return; // a person (or a deadline already) holds it
  const now = Date.now();
  const { step: stepMs, rollout: rolloutMs, action } = r.spec.progressDeadline;
  let kind: 'step' | 'rollout';
  let what: string;
  if (!d.rolloutPassed && now - r.startedMs >= rolloutMs) {
    d.rolloutPassed = true;
    kind = 'rollout';
    what = `not promoted ${formatDuration(now - r.startedMs)} after it started (progressDeadline.rollout ${formatDuration(rolloutMs)})`;
  } else if (!d.stepPassed && now - d.stepFromMs >= stepMs) {
    d.stepPassed = true;
    kind = 'step';
    what = `the step at ${bpsText(r.status.shareBps)} has not advanced in ${formatDuration(now - d.stepFromMs)} (progressDeadline.step ${formatDuration(stepMs)})`;
  } else {
    return;
  }
  r.status.deadline = {
    kind,
    at: new Date(now).toISOString(),
    action,
    ...(action === 'hold' ? { holding: true } : {}),
  };
  if (action === 'hold') r.status.paused = true; // shown together with the deadline that holds it
  const stats = {
    elapsedMs: kind === 'step' ? now - d.stepFromMs : now - r.startedMs,
    deadlineMs: kind === 'step' ? stepMs : rolloutMs,
  };
  await r.record('canary', {
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
  r.publish();
  void r.alert(
    'deadline',
    `Rollout of ${r.candidateName} on ${r.route} held at ${bpsText(r.status.shareBps)}: ${what}. ` +
      `Promote it, resume it or roll it back (model-rollout promote|resume|rollback ${r.route})`,
    { deadline: kind, ...stats },
  );
}
