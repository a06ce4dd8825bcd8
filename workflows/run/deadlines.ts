/**
 * The progress deadlines at a check where a step did not advance (src/decision/policy/deadlines.ts has
 * the rules). 'rollback' rolls back; 'hold' pauses the rollout at its share and alerts, until a person
 * promotes, resumes or rolls back. A step that waits on evidence calls it (setShare does).
 */
import { formatDuration } from '../../src/decision/config/duration';
import { takePassedDeadline } from '../../src/decision/policy';
import { bpsText } from './publish';
import { RollbackRequested, type RolloutRun } from './run';

export async function checkDeadlines(r: RolloutRun): Promise<void> {
  if (r.status.paused) return; // a person (or a deadline already) holds it
  const now = Date.now();
  const { action, ...limits } = r.spec.progressDeadline;
  const passed = takePassedDeadline(r.deadlines, limits, r.startedMs, now);
  if (!passed) return;
  const { kind, elapsedMs, deadlineMs } = passed;
  const what =
    kind === 'rollout'
      ? `not promoted ${formatDuration(elapsedMs)} after it started (progressDeadline.rollout ${formatDuration(deadlineMs)})`
      : `the step at ${bpsText(r.status.shareBps)} has not advanced in ${formatDuration(elapsedMs)} (progressDeadline.step ${formatDuration(deadlineMs)})`;
  r.status.deadline = {
    kind,
    at: new Date(now).toISOString(),
    action,
    ...(action === 'hold' ? { holding: true } : {}),
  };
  if (action === 'hold') r.status.paused = true; // shown together with the deadline that holds it
  const stats = { elapsedMs, deadlineMs };
  await r.record({
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
