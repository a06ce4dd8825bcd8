import { z } from 'zod';
import { defineEvaluatorKind } from './kind';
import { weight } from './weight';

/** The team's own eval service, configured on the worker by name. */
export const http = defineEvaluatorKind({
  kind: 'http',
  schema: z.strictObject({
    kind: z.literal('http'),
    /**
     * The name of an eval service configured on the worker (MODEL_ROLLOUT_EVALUATOR_<NAME>_URL): a spec
     * names it and never carries a URL, so no spec can send captured prompts to a host of its choosing.
     */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'name must be letters, digits, "_" or "-"'),
    /**
     * The range of the service's `score` (default 1-5): its scores are normalised to [0, 1] like every
     * evaluator's, and one outside the range is a failure of that answer.
     */
    scale: z
      .strictObject({ min: z.number().finite(), max: z.number().finite() })
      .refine((r) => r.max > r.min, { message: 'scale.max must be greater than scale.min' })
      .optional(),
    weight,
  }),
});
