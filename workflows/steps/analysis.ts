/**
 * analysis: measure the step's checks until each has `count` conclusive measurements (a failed one rolls
 * back; an inconclusive one is measured again and, after `holdAfter`, holds with an alert), under the
 * triggers. A person's promote passes the step.
 */
import { analysis, type AnalysisStep } from '../../src/decision/config/steps/analysis';
import { newCheckState, type CheckState } from '../../src/decision/analysis/tally';
import { measureDue } from '../run/analysis';
import { defineStepExecutor } from './executor';

interface AnalysisState {
  checks: CheckState[];
}

export const analysisStep = defineStepExecutor<AnalysisStep, AnalysisState>(
  analysis,
  async (r, a, { resume }) => {
    const state = resume ?? { checks: a.checks.map(newCheckState) };
    const show = () => {
      r.status.analysis = { background: r.status.analysis?.background ?? [], step: state.checks };
      r.publish();
    };
    show();
    const done = () => state.checks.every((s) => s.successes + s.failures >= a.count);
    while (!done()) {
      await r.maybeContinue(state);
      await measureDue(r, a.checks, state.checks, a.holdAfter);
      show();
      if (done() || r.takePromote()) break;
      const now = Date.now();
      const next = Math.min(
        ...a.checks.map((c, i) => (state.checks[i].lastAtMs ?? now) + c.interval - now),
        r.spec.triggers.interval,
      );
      await r.tick(next, `analysis ${a.checks.map((c) => c.name).join(', ')}`);
      if (r.takePromote()) break;
      await r.checkTriggers();
    }
    if (done())
      await r.record({
        action: 'promote-step',
        policy: 'analysis',
        reasons: state.checks.map((s) => `analysis ${s.last?.reason ?? `${s.name}: not measured`}`),
        stats: Object.fromEntries(state.checks.map((s) => [s.name, s.last?.value ?? null])),
      });
    if (r.status.analysis) r.status.analysis.step = undefined;
    r.publish();
  },
);
