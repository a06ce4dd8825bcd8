/**
 * `{ "eval": { "items": [...], "margin": 0.05 } }`: the team's eval dataset against the candidate and the
 * stable model before the step after it, through the worker's providers (see docs/eval.md). The rollout goes
 * on only when the candidate is not worse than stable by more than the margin; otherwise it rolls back, and
 * when the step comes before the first share, no user request ever reached the candidate.
 *
 * The items travel in the spec (so a rollout is whole in its history): `model-rollout start --spec` reads a
 * `"dataset": "file.jsonl"` into `items` before it starts the workflow.
 */
import { z } from 'zod';
import { datasetItemSchema } from '../../eval/dataset';
import { positiveDurationSchema } from '../duration-schema';
import { defineStepKind } from './kind';

/** Items per eval step at most: they are part of the rollout's input and history. */
export const MAX_EVAL_ITEMS = 500;

const itemSchema = datasetItemSchema.and(z.object({ id: z.string().min(1) }));

export interface EvalStep {
  items: Array<z.infer<typeof itemSchema>>;
  margin: number;
  confidence: 0.8 | 0.9 | 0.95 | 0.975 | 0.99;
  concurrency: number;
  timeout: number;
}

export const evalGate = defineStepKind<EvalStep>({
  kind: 'eval',
  schema: z.strictObject({
    items: z
      .array(itemSchema)
      .min(1, 'an eval step needs items (or a "dataset" file, read by `model-rollout start --spec`)')
      .max(MAX_EVAL_ITEMS, `at most ${MAX_EVAL_ITEMS} items (they travel in the rollout's history)`),
    margin: z.number().min(0).max(1).default(0.05),
    confidence: z
      .union([z.literal(0.8), z.literal(0.9), z.literal(0.95), z.literal(0.975), z.literal(0.99)])
      .default(0.95),
    concurrency: z.number().int().min(1).max(64).default(8),
    timeout: positiveDurationSchema().default(60_000),
  }),
  describe: (e) => `eval ${e.items.length} items (margin ${Math.round(e.margin * 1000) / 10} points)`,
  phase: () => 'eval',
  gate: true,
});
