/**
 * pause: wait at the current share for its duration, or until a person resumes or promotes. The triggers
 * keep watching; `status` shows the rollout paused.
 */
import { formatDuration } from '../../src/decision/config/duration';
import { pause } from '../../src/decision/config/steps/pause';
import { bpsText } from '../run/publish';
import { defineStepExecutor } from './executor';

interface PauseState {
  /** When the pause ends by itself (null: only a person ends it). */
  untilMs: number | null;
}

export const pauseStep = defineStepExecutor<{ duration?: number }, PauseState>(
  pause,
  async (r, p, { resume }) => {
    const state = resume ?? { untilMs: p.duration === undefined ? null : Date.now() + p.duration };
    if (!resume) {
      r.status.paused = true;
      r.publish();
      const until = p.duration === undefined ? 'until resumed' : `for ${formatDuration(p.duration)}`;
      void r.alert(
        'pause',
        `Rollout of ${r.candidateName} on ${r.route} paused at ${bpsText(r.status.shareBps)} ${until} ` +
          `(step ${r.index + 1}; model-rollout resume|promote|rollback ${r.route})`,
      );
    }
    while (r.status.paused) {
      await r.maybeContinue(state);
      if (state.untilMs !== null && Date.now() >= state.untilMs) break;
      const interval = r.spec.triggers.interval;
      const wait = state.untilMs === null ? interval : Math.min(interval, state.untilMs - Date.now());
      await r.tick(wait, 'pause', () => !r.status.paused);
      if (r.takePromote()) break;
      await r.checkTriggers();
    }
    r.status.paused = false;
    r.publish();
  },
);
