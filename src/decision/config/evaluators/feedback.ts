import { z } from 'zod';
import { defineEvaluatorKind } from './kind';
import { weight } from './weight';

/** User feedback posted back by request id. */
export const feedback = defineEvaluatorKind({
  kind: 'feedback',
  schema: z.strictObject({ kind: z.literal('feedback'), weight }),
});
