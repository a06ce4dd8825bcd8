import { z } from 'zod';
import { checks } from './checks';
import { feedback } from './feedback';
import { http } from './http';
import { judge } from './judge';
import { reference } from './reference';

/**
 * The registry of evaluator kinds: which evaluators score a rollout's answers (`evaluation.evaluators`).
 * Pure code (zod only): the rollout spec, and with it the workflow bundle, carries it. Every evaluator gives
 * a score on [0, 1] (its own scale normalised), says "not applicable" (no feedback yet, no reference
 * answer), or fails (judge timeout, eval service down); a failure leaves the answer unscored and is counted,
 * never papered over.
 *
 * ## Adding an evaluator kind (e.g. `toxicity`)
 * 1. `src/decision/config/evaluators/toxicity.ts`: `export const toxicity = defineEvaluatorKind({ kind,
 *    schema })` (the schema of its spec entry, zod), and add it to KINDS below (one line).
 * 2. `src/decision/scoring/evaluators/toxicity.ts`: `export const toxicity = defineEvaluator('toxicity',
 *    (config, deps) => ({ name, weight, evaluate }))`, what it does with an answer (a score on [0, 1]),
 *    and add it to FACTORIES in that folder's index.ts (one line; the compiler refuses a kind without one).
 * 3. Its test (test/scoring-evaluators.test.ts shows how: the real activity on real Postgres). The spec
 *    schema reads the registry; nothing else changes. A `start` flag for it is optional (a spec can name
 *    any kind): src/cli/commands/start.ts, applyEvaluationFlags.
 * Two files, not one: the workflow bundle validates specs with the schema and must not import what a
 * factory uses (Ajv, Postgres, the question set); and the CLI registers its flags without loading zod,
 * which the gateway process (started through the same CLI) does without.
 */
export type { EvaluatorKindDef } from './kind';
export { defineEvaluatorKind } from './kind';
export { linearRegexProblem } from './checks';

const KINDS = [judge, http, checks, feedback, reference] as const;

export const EVALUATOR_KINDS: ReadonlyArray<(typeof KINDS)[number]> = KINDS;

type KindSchema = (typeof KINDS)[number]['schema'];

export type EvaluatorConfig = z.output<KindSchema>;
export type EvaluatorKind = EvaluatorConfig['kind'];

export const evaluatorSchema: z.ZodType<EvaluatorConfig, z.input<KindSchema>> = z.discriminatedUnion(
  'kind',
  KINDS.map((k) => k.schema) as unknown as [KindSchema, ...KindSchema[]],
);
