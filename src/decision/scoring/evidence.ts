/**
 * The rollout's running account of its quality evidence: scoring batch reports folded into the status the
 * CLI and the UI show, the reasons a decision carries, and when the evidence has gone missing. Pure code
 * (the workflow imports it).
 */
export interface ArmCounts {
  scored: number;
  failed: number;
}

/** What one scoring batch did (returned by the scoreAnswers activity). */
export interface ScoreReport {
  scored: number;
  failed: number;
  /** Answers no evaluator applied to (e.g. feedback-only, and no feedback). */
  notApplicable: number;
  bySource: Record<string, number>;
  /** Per arm: `candidate` is canary and shadow answers. */
  byArm: { stable: ArmCounts; candidate: ArmCounts };
  /** Failure reasons (e.g. `judge: timeout`) and how often, in this batch. */
  failures: Record<string, number>;
  /** Evaluation cost of this batch, and of the whole rollout so far (since `fromMs`), USD. */
  costUsd: number;
  totalCostUsd: number;
  budgetExhausted: boolean;
  /** Unscored answers left after this batch (not all of them will be sampled). */
  backlog: { stable: number; candidate: number };
}

/** What the evaluators have done for a rollout: judged and failed answers per arm, cost, evidence age. */
export interface ScoringStatus {
  scored: { stable: number; candidate: number };
  failed: { stable: number; candidate: number };
  /** Failure reasons (e.g. `judge: timeout`), cumulative. */
  failures: Record<string, number>;
  costUsd: number;
  budgetUsd?: number;
  budgetExhausted: boolean;
  /** When the candidate last got a score (ISO), if ever. */
  lastCandidateScoreAt?: string;
  /** True once the candidate has had no usable score for `evaluation.noEvidenceAfter`. */
  noQualityEvidence: boolean;
  /** Why the latest scoring batch failed as a whole, if it did. */
  batchError?: string;
}

export function newScoringStatus(budgetUsd: number | undefined): ScoringStatus {
  return {
    scored: { stable: 0, candidate: 0 },
    failed: { stable: 0, candidate: 0 },
    failures: {},
    costUsd: 0,
    budgetUsd,
    budgetExhausted: false,
    noQualityEvidence: false,
  };
}

export function emptyReport(): ScoreReport {
  return {
    scored: 0,
    failed: 0,
    notApplicable: 0,
    bySource: {},
    byArm: { stable: { scored: 0, failed: 0 }, candidate: { scored: 0, failed: 0 } },
    failures: {},
    costUsd: 0,
    totalCostUsd: 0,
    budgetExhausted: false,
    backlog: { stable: 0, candidate: 0 },
  };
}

/**
 * Folds one batch into the totals. `sinceEvidenceMs` is how long the candidate has gone without a score
 * before this batch; returns true when this batch is the one that makes the evidence "missing" (alert once).
 */
export function foldReport(
  totals: ScoringStatus,
  report: ScoreReport,
  at: { nowIso: string; sinceEvidenceMs: number; noEvidenceAfterMs: number },
): { evidence: boolean; becameMissing: boolean } {
  totals.scored.stable += report.byArm.stable.scored;
  totals.scored.candidate += report.byArm.candidate.scored;
  totals.failed.stable += report.byArm.stable.failed;
  totals.failed.candidate += report.byArm.candidate.failed;
  for (const [reason, n] of Object.entries(report.failures))
    totals.failures[reason] = (totals.failures[reason] ?? 0) + n;
  // The activity reads the rollout's total from the database: a failed batch (0) must not lower it.
  totals.costUsd = Math.max(totals.costUsd, report.totalCostUsd);
  totals.budgetExhausted = report.budgetExhausted;
  if (report.byArm.candidate.scored > 0) {
    totals.lastCandidateScoreAt = at.nowIso;
    totals.noQualityEvidence = false;
    return { evidence: true, becameMissing: false };
  }
  if (!totals.noQualityEvidence && at.sinceEvidenceMs >= at.noEvidenceAfterMs) {
    totals.noQualityEvidence = true;
    return { evidence: false, becameMissing: true };
  }
  return { evidence: false, becameMissing: false };
}

export function topFailures(failures: Record<string, number>): string {
  return Object.entries(failures)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([reason, n]) => `${reason} x${n}`)
    .join(', ');
}

export function noEvidenceCause(s: ScoringStatus): string {
  if (s.budgetExhausted) return 'the judge budget is spent';
  if (s.batchError) return s.batchError;
  if (s.failed.candidate > 0) return `evaluators failing (${topFailures(s.failures)})`;
  return 'no scored candidate answers (is capture on for this route?)';
}

/** One line for the UI's current details. */
export function scoringLine(s: ScoringStatus): string {
  const failed = s.failed.stable + s.failed.candidate;
  return (
    `judged: ${s.scored.candidate} candidate / ${s.scored.stable} stable, ` +
    `${failed} failed${failed ? ` (${topFailures(s.failures)})` : ''}, judge cost $${s.costUsd.toFixed(4)}`
  );
}

/** The evidence side of a canary decision: missing scores, failures, budget, the candidate's fallbacks. */
export function evidenceReasons(
  totals: ScoringStatus,
  report: ScoreReport,
  fallbacks: { canary: number } | undefined,
  candidateName: string,
): string[] {
  const reasons: string[] = [];
  if (totals.noQualityEvidence)
    reasons.push(
      `no quality evidence since ${totals.lastCandidateScoreAt ?? 'the start'}: ${noEvidenceCause(totals)}`,
    );
  if (report.failed > 0)
    reasons.push(
      `evaluator failures in this check: ${report.failed} of ${report.failed + report.scored} (${topFailures(report.failures)}); those answers have no score`,
    );
  if (totals.batchError) reasons.push(totals.batchError);
  if (totals.budgetExhausted)
    reasons.push(`judge budget spent ($${totals.costUsd.toFixed(4)} of $${totals.budgetUsd}): no new scores`);
  if (fallbacks && fallbacks.canary > 0)
    reasons.push(
      `${fallbacks.canary} canary answers came from a fallback: counted as failures of ${candidateName}`,
    );
  return reasons;
}
