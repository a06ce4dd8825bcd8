/** bake: watch the promoted model under the triggers for the step's duration (a trigger rolls back). */
import { formatDuration } from '../../src/decision/config/duration';
import { bake } from '../../src/decision/config/steps/bake';
import { backgroundAnalysis } from '../run/analysis';
import { defineStepExecutor } from './executor';

interface BakeState {
  endMs: number;
}

export const bakeStep = defineStepExecutor<{ duration: number }, BakeState>(
  bake,
  async (r, b, { resume }) => {
    const state = resume ?? { endMs: Date.now() + b.duration };
    // The bake ends at its time, unless a check of the spec's analysis is inconclusive then: it goes on
    // until the check is conclusive (never success by default), holding with an alert after `holdAfter`.
    while (Date.now() < state.endMs || (await backgroundAnalysis(r, 'bake')) === 'inconclusive') {
      await r.maybeContinue(state);
      const left = state.endMs - Date.now();
      await r.tick(
        left > 0 ? Math.min(r.spec.triggers.interval, left) : r.spec.triggers.interval,
        `bake (${formatDuration(b.duration)})`,
      );
      r.promoteRequest = undefined; // nothing left to promote
      await r.checkTriggers();
      await backgroundAnalysis(r, 'bake');
    }
  },
);
