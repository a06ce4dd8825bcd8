import { describe, expect, it } from 'vitest';
import {
  emptyReport,
  evidenceReasons,
  foldReport,
  newScoringStatus,
  noEvidenceCause,
  type ScoreReport,
} from '../../src/decision/scoring/evidence';

const report = (patch: Partial<ScoreReport>): ScoreReport => ({ ...emptyReport(), ...patch });
const at = (sinceEvidenceMs: number) => ({
  nowIso: '2026-01-01T00:00:00.000Z',
  sinceEvidenceMs,
  noEvidenceAfterMs: 60_000,
});

describe('foldReport', () => {
  it('adds up judged and failed answers per arm and failure reasons; cost is the rollout total', () => {
    const totals = newScoringStatus(5);
    foldReport(
      totals,
      report({
        byArm: { stable: { scored: 4, failed: 1 }, candidate: { scored: 2, failed: 3 } },
        failures: { 'judge: timeout': 4 },
        totalCostUsd: 0.5,
      }),
      at(0),
    );
    foldReport(
      totals,
      report({
        byArm: { stable: { scored: 1, failed: 0 }, candidate: { scored: 1, failed: 0 } },
        totalCostUsd: 0.7,
      }),
      at(0),
    );
    foldReport(totals, emptyReport(), at(0)); // a failed batch reports 0: the total does not drop
    expect(totals).toMatchObject({
      scored: { stable: 5, candidate: 3 },
      failed: { stable: 1, candidate: 3 },
      failures: { 'judge: timeout': 4 },
      costUsd: 0.7,
      budgetUsd: 5,
    });
  });

  it('says the evidence went missing once, after noEvidenceAfter without a candidate score, and clears it', () => {
    const totals = newScoringStatus(undefined);
    const failing = report({
      byArm: { stable: { scored: 9, failed: 0 }, candidate: { scored: 0, failed: 5 } },
      failed: 5,
      failures: { 'http:evals: HTTP 500': 5 },
    });
    expect(foldReport(totals, failing, at(30_000))).toEqual({ evidence: false, becameMissing: false });
    expect(foldReport(totals, failing, at(60_000))).toEqual({ evidence: false, becameMissing: true });
    expect(foldReport(totals, failing, at(90_000))).toEqual({ evidence: false, becameMissing: false });
    expect(totals.noQualityEvidence).toBe(true);
    expect(noEvidenceCause(totals)).toBe('evaluators failing (http:evals: HTTP 500 x15)');
    expect(evidenceReasons(totals, failing, { canary: 0 }, 'openai:gpt-4o')).toEqual([
      'no quality evidence since the start: evaluators failing (http:evals: HTTP 500 x15)',
      'evaluator failures in this check: 5 of 5 (http:evals: HTTP 500 x5); those answers have no score',
    ]);
    const ok = report({ byArm: { stable: { scored: 1, failed: 0 }, candidate: { scored: 1, failed: 0 } } });
    expect(foldReport(totals, ok, at(120_000))).toEqual({ evidence: true, becameMissing: false });
    expect(totals.noQualityEvidence).toBe(false);
    expect(totals.lastCandidateScoreAt).toBe('2026-01-01T00:00:00.000Z');
  });

  it('names the cause: a spent budget, a failed batch, or no captured answers; and the fallback answers', () => {
    const totals = newScoringStatus(1);
    expect(noEvidenceCause(totals)).toMatch(/is capture on/);
    totals.batchError = 'scoring batch failed: connection refused';
    expect(noEvidenceCause(totals)).toBe('scoring batch failed: connection refused');
    totals.budgetExhausted = true;
    expect(noEvidenceCause(totals)).toBe('the judge budget is spent');
    expect(evidenceReasons(totals, emptyReport(), { canary: 7 }, 'openai:gpt-4o')).toEqual([
      'scoring batch failed: connection refused',
      'judge budget spent ($0.0000 of $1): no new scores',
      '7 canary answers came from a fallback: counted as failures of openai:gpt-4o',
    ]);
  });
});
