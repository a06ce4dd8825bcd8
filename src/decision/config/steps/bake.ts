/**
 * `{ "bake": { "duration": "30m" } }`: after the promotion, watch the new stable model under the triggers
 * for this long before the rollout completes (a trigger that fires rolls back).
 */
import { z } from 'zod';
import { formatDuration } from '../duration';
import { durationSchema } from '../duration-schema';
import { defineStepKind } from './kind';

export const bake = defineStepKind<{ duration: number }>({
  kind: 'bake',
  schema: z.strictObject({ duration: durationSchema('30m') }).prefault({}),
  describe: (b) => `bake ${formatDuration(b.duration)}`,
  phase: () => 'baking',
  check: ({ promotedBefore }) =>
    promotedBefore ? [] : ['a bake step comes after the promotion (a setShare of 10000)'],
});
