/** Scoring the captured answers between checks, and folding each batch into the rollout's evidence. */
import { formatDuration } from '../../src/decision/config/duration';
import {
  emptyReport,
  foldReport,
  newScoringStatus,
  noEvidenceCause,
  type ScoreReport,
} from '../../src/decision/scoring/evidence';
import { scoring } from './activities';
import type { RolloutRun } from './run';

/**
 * The wait between checks, with the scoring batch running during it, bounded to most of the interval, so
 * a judge that takes seconds has the whole interval to keep up.
 */
export async function tickWhileScoring(
  r: RolloutRun,
  fromMs: number,
  summary: string,
): Promise<{ result(): Promise<ScoreReport>; settle(): Promise<void> }> {
  const batch = scoreAnswers(r, fromMs);
  await r.tick(r.spec.evaluation.interval, summary); // a rollback throws here; the batch then ends by itself
  return { result: () => batch, settle: async () => void (await batch) };
}

/** One scoring batch: this batch's report; status.scoring carries the running totals. */
export async function scoreAnswers(r: RolloutRun, fromMs: number): Promise<ScoreReport> {
  const evaluation = r.spec.evaluation;
  const totals = (r.status.scoring ??= newScoringStatus(evaluation.budgetUsd));
  r.lastEvidenceMs ??= fromMs;
  let report: ScoreReport;
  try {
    report = await scoring.scoreAnswers.executeWithOptions({ summary: 'score answers' }, [
      {
        route: r.route,
        fromMs,
        limit: evaluation.scoreBatch,
        judge: evaluation.judge,
        evaluators: evaluation.evaluators,
        concurrency: evaluation.concurrency,
        maxBatchMs: Math.min(240_000, Math.max(5_000, evaluation.interval * 0.8)),
        judgeTimeoutMs: evaluation.judgeTimeout,
        budgetUsd: evaluation.budgetUsd,
        sample: evaluation.sample,
      },
    ]);
    totals.batchError = undefined;
  } catch (err) {
    // The evidence stays what it was; the policy decides on it, and the reason is shown.
    const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error) : (err as Error);
    totals.batchError = `scoring batch failed: ${cause.message}`.slice(0, 300);
    report = emptyReport();
  }
  const now = Date.now();
  const folded = foldReport(totals, report, {
    nowIso: new Date(now).toISOString(),
    sinceEvidenceMs: now - r.lastEvidenceMs,
    noEvidenceAfterMs: evaluation.noEvidenceAfter,
  });
  if (folded.evidence) r.lastEvidenceMs = now;
  if (folded.becameMissing)
    void r.alert(
      'no-quality-evidence',
      `No quality evidence for ${r.candidateName} on ${r.route} for ${formatDuration(now - r.lastEvidenceMs)}: ${noEvidenceCause(totals)}`,
      { failures: totals.failures, scored: totals.scored },
    );
  r.publish();
  return report;
}
