/**
 * The shadow phase: a sampled share of stable requests also goes to the candidate, pairs are compared, and
 * the sign test's report decides whether the canary may start (or is the outcome, for shadow-only).
 */
import { analyzeShadow, type ShadowAnalysis } from '../src/decision/policy';
import { DURABLE } from './activity-options';
import { acts } from './rollout-activities';
import type { RolloutPosition } from './rollout-carry';
import type { RolloutRun } from './rollout-run';
import { tickWhileScoring } from './rollout-scoring';

export async function shadowPhase(
  r: RolloutRun,
  resume?: Extract<RolloutPosition, { phase: 'shadow' }>,
): Promise<ShadowAnalysis> {
  if (!resume) {
    r.setPhase('shadow');
    await r.changeRouting(
      { shadowRate: r.spec.shadow.rate },
      `shadow ${Math.round(r.spec.shadow.rate * 100)}% of stable requests to ${r.candidateName}`,
    );
  }
  const since = resume?.sinceMs ?? Date.now();
  const deadline = resume?.deadlineMs ?? since + r.spec.shadow.maxDuration;
  let report = r.status.shadow ?? analyzeShadow({ shadowBetter: 0, stableBetter: 0, ties: 0 });
  for (;;) {
    await r.maybeContinue({ phase: 'shadow', sinceMs: since, deadlineMs: deadline });
    const batch = await tickWhileScoring(r, since, 'shadow evaluation');
    await r.checkTriggers('shadow', since);
    await batch.result();
    const counts = await acts.compareShadowPairs.executeWithOptions(
      { ...DURABLE, summary: 'compare shadow pairs' },
      [
        {
          route: r.route,
          fromMs: since,
          limit: r.spec.evaluation.scoreBatch,
          judge: r.spec.evaluation.judge,
        },
      ],
    );
    report = analyzeShadow(counts);
    r.status.shadow = report;
    const compared = counts.shadowBetter + counts.stableBetter + counts.ties;
    const overBudget = r.spec.shadow.budgetUsd !== undefined && counts.costUsd >= r.spec.shadow.budgetUsd;
    await r.record('shadow', {
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
    if (compared >= r.spec.shadow.minComparisons || Date.now() >= deadline || overBudget) return report;
    if (r.promoteRequest) {
      r.promoteRequest = undefined; // a person ends the shadow phase early
      return report;
    }
  }
}
