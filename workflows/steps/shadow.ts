/**
 * shadow: a sampled share of stable requests also goes to the candidate, pairs are compared, and the sign
 * test's report decides whether the rollout goes on (`require`), or is its outcome when no step after it
 * moves traffic (shadow-only).
 */
import { shadow, type ShadowStep } from '../../src/decision/config/steps/shadow';
import { analyzeShadow } from '../../src/decision/policy';
import { DURABLE } from '../activity-options';
import { acts } from '../run/activities';
import { RollbackRequested } from '../run/run';
import { tickWhileScoring } from '../run/scoring';
import { defineStepExecutor } from './executor';

interface ShadowState {
  sinceMs: number;
  deadlineMs: number;
}

export const shadowStep = defineStepExecutor<ShadowStep, ShadowState>(shadow, async (r, s, { resume }) => {
  if (!resume) {
    await r.changeRouting(
      { shadowRate: s.rate },
      `shadow ${Math.round(s.rate * 100)}% of stable requests to ${r.candidateName}`,
    );
    r.watch = { tag: 'shadow', sinceMs: Date.now() };
  }
  const state = resume ?? { sinceMs: Date.now(), deadlineMs: Date.now() + s.maxDuration };
  let report = r.status.shadow ?? analyzeShadow({ shadowBetter: 0, stableBetter: 0, ties: 0 });
  for (;;) {
    await r.maybeContinue(state);
    const batch = await tickWhileScoring(r, state.sinceMs, 'shadow evaluation');
    await r.checkTriggers();
    await batch.result();
    const counts = await acts.compareShadowPairs.executeWithOptions(
      { ...DURABLE, summary: 'compare shadow pairs' },
      [
        {
          route: r.route,
          fromMs: state.sinceMs,
          limit: r.spec.evaluation.scoreBatch,
          judge: r.spec.evaluation.judge,
        },
      ],
    );
    report = analyzeShadow(counts);
    r.status.shadow = report;
    const compared = counts.shadowBetter + counts.stableBetter + counts.ties;
    const overBudget = s.budgetUsd !== undefined && counts.costUsd >= s.budgetUsd;
    await r.record({
      action: 'hold',
      policy: 'shadow-sign-test',
      reasons: [...report.reasons, `seed rule (better > worse * 1.5): ${report.seedRule.recommendation}`],
      stats: {
        compared,
        shadowBetter: counts.shadowBetter,
        stableBetter: counts.stableBetter,
        ties: counts.ties,
        costUsd: counts.costUsd,
        winRate: report.winRate,
      },
    });
    // A person's promote ends the shadow phase early.
    if (compared >= s.minComparisons || Date.now() >= state.deadlineMs || overBudget || r.takePromote())
      break;
  }
  const blocks =
    (s.require === 'promote' && report.recommendation !== 'promote') ||
    (s.require === 'not-worse' && report.recommendation === 'keep-stable');
  if (blocks)
    throw new RollbackRequested(`shadow report says ${report.recommendation}`, 'shadow', { shadow: report });
  await r.changeRouting({ shadowRate: 0 }, 'shadow phase over');
});
