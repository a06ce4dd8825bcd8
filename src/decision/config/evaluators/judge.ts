import { z } from 'zod';
import { targetSchema } from '../target';
import { defineEvaluatorKind } from './kind';
import { weight } from './weight';

/**
 * An LLM judge grading each answer 1-5. Its flags (`--judge`, `--judge-rubric`) belong to `start` itself:
 * `--judge` alone also sets the default list's judge and the shadow comparisons' (see `start --help`).
 */
export const judge = defineEvaluatorKind({
  kind: 'judge',
  schema: z.strictObject({
    kind: z.literal('judge'),
    /** The judge model, `provider:model` or a target object. */
    target: targetSchema,
    /** Replaces the default 1-5 rubric (the judge must still reply with one digit 1-5). */
    rubric: z.string().min(10).max(4000).optional(),
    weight,
  }),
});
