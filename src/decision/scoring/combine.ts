/**
 * How the outcomes of several evaluators become one answer's score. Pure code.
 *
 * - `weighted` (an explicit evaluator list): the weighted mean of the evaluators that applied. One that
 *   failed (judge timeout, eval service down) makes the whole answer a failure: a mean of the others
 *   would look like evidence while silently dropping the signal the team asked for.
 * - `first` (the default list: reference, feedback, then the judge or the heuristic): the first evaluator
 *   that applies decides; its failure is the answer's failure, never a fall-through to a weaker one.
 */
export type EvaluatorOutcome =
  | { name: string; weight: number; score: number; costUsd?: number }
  | { name: string; weight: number; notApplicable: true; costUsd?: number }
  | { name: string; weight: number; error: string; costUsd?: number };

export type Combined =
  | { kind: 'scored'; score: number; source: string; costUsd: number }
  | { kind: 'failed'; error: string; costUsd: number }
  | { kind: 'not-applicable'; costUsd: number };

export type CombineMode = 'weighted' | 'first';

export function combineOutcomes(outcomes: readonly EvaluatorOutcome[], mode: CombineMode): Combined {
  const costUsd = outcomes.reduce((sum, o) => sum + (o.costUsd ?? 0), 0);
  if (mode === 'first') {
    for (const o of outcomes) {
      if ('error' in o) return { kind: 'failed', error: `${o.name}: ${o.error}`, costUsd };
      if ('score' in o) return { kind: 'scored', score: clampScore(o.score), source: o.name, costUsd };
    }
    return { kind: 'not-applicable', costUsd };
  }
  const failed = outcomes.filter((o): o is Extract<EvaluatorOutcome, { error: string }> => 'error' in o);
  if (failed.length > 0)
    return { kind: 'failed', error: failed.map((f) => `${f.name}: ${f.error}`).join('; '), costUsd };
  const scored = outcomes.filter((o): o is Extract<EvaluatorOutcome, { score: number }> => 'score' in o);
  if (scored.length === 0) return { kind: 'not-applicable', costUsd };
  const totalWeight = scored.reduce((sum, o) => sum + o.weight, 0);
  const score = scored.reduce((sum, o) => sum + clampScore(o.score) * o.weight, 0) / totalWeight;
  return { kind: 'scored', score, source: scored.map((o) => o.name).join('+'), costUsd };
}

/** Scores are on [0, 1] (see evaluators.ts); a stray value is held to it. */
export function clampScore(score: number): number {
  return Math.min(1, Math.max(0, score));
}
