/**
 * approve: wait for a person's approval, under the triggers. When none comes within `timeout`, the step's
 * `onTimeout` is applied and said: 'rollback', or 'approve' (go on as if approved). An approval that came
 * before the step counts for it.
 */
import { log } from '@temporalio/workflow';
import { formatDuration } from '../../src/decision/config/duration';
import { approve, type ApproveStep } from '../../src/decision/config/steps/approve';
import { approvalTimedOut } from '../../src/decision/policy';
import { RollbackRequested } from '../run/run';
import { defineStepExecutor } from './executor';

interface ApproveState {
  sinceMs: number;
}

export const approveStep = defineStepExecutor<ApproveStep, ApproveState>(
  approve,
  async (r, a, { resume }) => {
    const state = resume ?? { sinceMs: Date.now() };
    if (!resume) {
      r.status.awaitingApproval = true;
      r.publish();
      void r.alert(
        'approval-needed',
        `Rollout of ${r.candidateName} on ${r.route} waits for approval (model-rollout approve ${r.route})`,
      );
    }
    const noApproval = `no approval within ${formatDuration(a.timeout)}`;
    while (!r.approvedBy) {
      await r.maybeContinue(state);
      if (approvalTimedOut(state.sinceMs, a.timeout, Date.now())) {
        r.status.deadline = { kind: 'approval', at: new Date().toISOString(), action: a.onTimeout };
        await r.record({
          action: a.onTimeout === 'approve' ? 'promote-step' : 'rollback',
          policy: 'progress-deadline',
          reasons: [`${noApproval}: onTimeout is '${a.onTimeout}'`],
          stats: { deadlineMs: a.timeout },
        });
        if (a.onTimeout === 'rollback')
          throw new RollbackRequested(noApproval, 'approval-timeout', { deadline: 'approval' });
        r.approvedBy = 'approval-timeout';
        void r.alert(
          'deadline',
          `Rollout of ${r.candidateName} on ${r.route}: ${noApproval}; going on as onTimeout 'approve' says`,
          { deadline: 'approval' },
        );
        break;
      }
      const left = state.sinceMs + a.timeout - Date.now();
      await r.tick(Math.min(r.spec.triggers.interval, left), 'wait for approval', () => !!r.approvedBy);
      r.promoteRequest = undefined; // a promote does not pass an approval
      await r.checkTriggers();
    }
    log.info('approved', { actor: r.approvedBy });
    r.advancedBy = r.approvedBy;
    r.approvedBy = undefined; // one approval per approve step
    r.status.awaitingApproval = false;
    r.publish();
  },
);
