import { z } from 'zod';
import { RE2JS } from 're2js';
import { defineEvaluatorKind } from './kind';
import { weight } from './weight';

/** Deterministic checks: length, a regex, a JSON Schema. Pass 1, fail 0. */
export const checks = defineEvaluatorKind({
  kind: 'checks',
  schema: z
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
    }),
});

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
