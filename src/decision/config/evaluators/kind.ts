import type { z } from 'zod';

/**
 * One evaluator kind's configuration: the schema of its entry in `evaluation.evaluators`. Pure code (zod
 * only): the workflow bundle validates specs with it. What the kind does with an answer is its factory,
 * src/decision/scoring/evaluators/<kind>.ts (which may use I/O).
 */
export interface EvaluatorKindDef<K extends string = string, S extends z.ZodType = z.ZodType> {
  kind: K;
  schema: S;
}

export function defineEvaluatorKind<K extends string, S extends z.ZodType>(
  def: EvaluatorKindDef<K, S>,
): EvaluatorKindDef<K, S> {
  return def;
}
