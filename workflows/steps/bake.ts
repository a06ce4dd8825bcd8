/** bake: watch the promoted model under the triggers for the step's duration (a trigger rolls back). */
import { formatDuration } from '../../src/decision/config/duration';
import { bake } from '../../src/decision/config/steps/bake';
import { defineStepExecutor } from './executor';

interface BakeState {
  endMs: number;
}

export const bakeStep = defineStepExecutor<{ duration: number }, BakeState>(
  bake,
  async (r, b, { resume }) => {
    const state = resume ?? { endMs: Date.now() + b.duration };
    while (Date.now() < state.endMs) {
      await r.maybeContinue(state);
      await r.tick(
        Math.min(r.spec.triggers.interval, state.endMs - Date.now()),
        `bake (${formatDuration(b.duration)})`,
      );
      r.promoteRequest = undefined; // nothing left to promote
      await r.checkTriggers();
    }
  },
);
