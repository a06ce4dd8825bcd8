import { z } from 'zod';
import { defineEvaluatorKind } from './kind';
import { weight } from './weight';

/** Grading against the bundled question set's known answers. */
export const reference = defineEvaluatorKind({
  kind: 'reference',
  schema: z.strictObject({ kind: z.literal('reference'), weight }),
});
