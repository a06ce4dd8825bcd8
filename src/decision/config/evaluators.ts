import { z } from 'zod';
import { RE2JS } from 're2js';
import { targetSchema } from './target';

/**
 * Which evaluators score a rollout's answers, and how their scores combine. Pure code (zod only): the
 * rollout spec, and with it the workflow bundle, carries it. Every evaluator gives a score on the 1-5
 * scale, says "not applicable" (no feedback yet, no reference answer), or fails (judge timeout, eval
 * service down); a failure leaves the answer unscored and is counted, never papered over.
 */

const weight = z.number().positive().max(100).default(1);

export const judgeEvaluatorSchema = z.strictObject({
  kind: z.literal('judge'),
  /** The judge model, `provider:model` or a target object. */
  target: targetSchema,
  /** Replaces the default 1-5 rubric (the judge must still reply with one digit 1-5). */
  rubric: z.string().min(10).max(4000).optional(),
  weight,
});

export const httpEvaluatorSchema = z.strictObject({
  kind: z.literal('http'),
  /**
   * The name of an eval service configured on the worker (MODEL_ROLLOUT_EVALUATOR_<NAME>_URL): a spec
   * names it and never carries a URL, so no spec can send captured prompts to a host of its choosing.
   */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'name must be letters, digits, "_" or "-"'),
  weight,
});

export const checksEvaluatorSchema = z
  .strictObject({
    kind: z.literal('checks'),
    /** The answer must parse as JSON and match this JSON Schema. */
    jsonSchema: z.record(z.string(), z.unknown()).optional(),
    /**
     * The answer must match this regular expression. It runs on RE2 (linear time, see
     * src/decision/scoring/checks.ts): JavaScript syntax without backreferences or lookaround.
     */
    regex: z
      .string()
      .max(1000)
      .superRefine((source, ctx) => {
        const problem = linearRegexProblem(source);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
    minLength: z.number().int().min(0).optional(),
    maxLength: z.number().int().positive().optional(),
    weight,
  })
  .refine((c) => c.jsonSchema || c.regex || c.minLength !== undefined || c.maxLength !== undefined, {
    message: 'checks needs at least one of jsonSchema, regex, minLength, maxLength',
  });

export const feedbackEvaluatorSchema = z.strictObject({ kind: z.literal('feedback'), weight });
export const referenceEvaluatorSchema = z.strictObject({ kind: z.literal('reference'), weight });

export const evaluatorSchema = z.discriminatedUnion('kind', [
  judgeEvaluatorSchema,
  httpEvaluatorSchema,
  checksEvaluatorSchema,
  feedbackEvaluatorSchema,
  referenceEvaluatorSchema,
]);

export type EvaluatorConfig = z.output<typeof evaluatorSchema>;
export type EvaluatorKind = EvaluatorConfig['kind'];

/**
 * Why a `checks` regex cannot run, or undefined. Answers are model output and the worker's event loop is
 * shared: a pattern that needs a backtracking engine is refused here, at `start`, rather than hanging a
 * worker on one answer later.
 */
export function linearRegexProblem(source: string): string | undefined {
  try {
    new RegExp(source);
  } catch {
    return 'regex is not a valid regular expression';
  }
  try {
    RE2JS.compile(source);
    return undefined;
  } catch (err) {
    const detail = (err as Error).message.replace(/^error parsing regexp: /, '');
    return (
      `regex needs a backtracking engine (${detail}); checks run on RE2 in linear time, which takes no ` +
      'backreferences or lookaround, so that no answer can stall the worker'
    );
  }
}
