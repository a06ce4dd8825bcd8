/**
 * `{ "pause": { "duration": "1h" } }` waits that long at the current share; `{ "pause": {} }` waits until
 * a person resumes or promotes (`model-rollout resume|promote`). The triggers keep watching meanwhile.
 */
import { z } from 'zod';
import { formatDuration } from '../duration';
import { positiveDurationSchema } from '../duration-schema';
import { defineStepKind } from './kind';

export const pause = defineStepKind<{ duration?: number }>({
  kind: 'pause',
  schema: z.strictObject({ duration: positiveDurationSchema().optional() }).prefault({}),
  describe: (p) => (p.duration === undefined ? 'pause until resumed' : `pause ${formatDuration(p.duration)}`),
  phase: () => 'paused',
});
