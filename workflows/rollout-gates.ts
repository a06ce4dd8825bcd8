/** After the canary (or directly, blue-green): the approval gate, the promotion to 100%, the bake. */
import { log } from '@temporalio/workflow';
import { formatDuration } from '../src/decision/config/duration';
import type { RolloutPosition } from './rollout-carry';
import { RollbackRequested, type RolloutRun } from './rollout-run';

export async function approvalGate(
  r: RolloutRun,
  resume?: Extract<RolloutPosition, { phase: 'approval' }>,
): Promise<void> {
  if (!r.spec.approval.required) return;
  if (!resume) {
    r.setPhase('awaiting-approval');
    r.status.awaitingApproval = true;
    r.publish();
    void r.alert(
      'approval-needed',
      `Rollout of ${r.candidateName} on ${r.route} waits for approval (signal "approve")`,
    );
  }
  const deadline = resume?.deadlineMs ?? Date.now() + r.spec.approval.timeout;
  const since = resume?.sinceMs ?? Date.now();
  while (!r.approvedBy) {
    await r.maybeContinue({ phase: 'approval', sinceMs: since, deadlineMs: deadline });
    const timedOut = Date.now() >= deadline;
    const noApproval = `no approval within ${formatDuration(r.spec.approval.timeout)}`;
    if (timedOut && r.bounded && r.spec.approval.onTimeout !== 'hold') {
      // The timeout ends the wait: the spec's action is applied, and said.
      const action = r.spec.approval.onTimeout;
      r.status.deadline = { kind: 'approval', at: new Date().toISOString(), action };
      await r.record(r.status.phase, {
        action: action === 'approve' ? 'promote-step' : 'rollback',
        policy: 'progress-deadline',
        reasons: [`${noApproval}: approval.onTimeout is '${action}'`],
        stats: { deadlineMs: r.spec.approval.timeout },
      });
      if (action === 'rollback')
        throw new RollbackRequested(noApproval, 'approval-timeout', { deadline: 'approval' });
      r.approvedBy = 'approval-timeout';
      void r.alert(
        'deadline',
        `Rollout of ${r.candidateName} on ${r.route}: ${noApproval}; promoting it as approval.onTimeout says`,
        { deadline: 'approval' },
      );
      break;
    }
    if (timedOut && r.spec.approval.onTimeout === 'rollback') {
      throw new RollbackRequested(noApproval, 'approval-timeout');
    }
    await r.tick(
      timedOut ? r.spec.triggers.interval : Math.min(r.spec.triggers.interval, deadline - Date.now()),
      'wait for approval',
      () => !!r.approvedBy,
    );
    r.promoteRequest = undefined; // promotion waits for the approval, not for a promote signal
    await r.checkTriggers(r.spec.strategy === 'canary' ? 'canary' : 'shadow', since);
  }
  r.status.awaitingApproval = false;
  log.info('approved', { actor: r.approvedBy });
}

export async function promote(r: RolloutRun): Promise<void> {
  r.setPhase('promoting');
  const from = r.status.shareBps;
  await r.changeRouting(
    { stableSlot: r.candidateSlot, canaryBps: 0 },
    `promote ${r.candidateName} to stable (100%)`,
  );
  r.status.steps.push({ at: new Date().toISOString(), fromBps: from, toBps: 10_000, by: r.promotedBy });
  r.status.shareBps = 10_000;
  r.status.stable = r.candidateName;
  r.publish();
  void r.alert('promotion', `${r.candidateName} promoted to stable on ${r.route}`);
}

export async function bake(
  r: RolloutRun,
  resume?: Extract<RolloutPosition, { phase: 'bake' }>,
): Promise<void> {
  if (!resume) r.setPhase('baking');
  const since = resume?.sinceMs ?? Date.now();
  const end = resume?.endMs ?? since + r.spec.bake.duration;
  if (!resume) r.lastTriggerCheck = 0;
  while (Date.now() < end) {
    await r.maybeContinue({ phase: 'bake', sinceMs: since, endMs: end });
    await r.tick(
      Math.min(r.spec.triggers.interval, end - Date.now()),
      `bake (${formatDuration(r.spec.bake.duration)})`,
    );
    r.promoteRequest = undefined; // nothing left to promote
    await r.checkTriggers('stable', since);
  }
}
