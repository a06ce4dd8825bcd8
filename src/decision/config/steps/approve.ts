/**
 * `{ "approve": { "timeout": "24h", "onTimeout": "rollback" } }`: wait for a person's approval
 * (`model-rollout approve`); when none comes within `timeout`, `onTimeout` says what happens, alerted:
 * 'rollback', or 'approve' (go on as if approved). A `promote --full` stops here too.
 */
import { z } from 'zod';
import { formatDuration } from '../duration';
import { durationSchema } from '../duration-schema';
import { defineStepKind } from './kind';

export const approveSchema = z.strictObject({
  timeout: durationSchema('24h').refine((ms) => ms > 0, 'must be longer than 0'),
  onTimeout: z
    .enum(['rollback', 'approve'], {
      error: "onTimeout must be 'rollback' or 'approve' (a wait without end is a pause step)",
    })
    .default('rollback'),
});

export type ApproveStep = z.output<typeof approveSchema>;

export const approve = defineStepKind<ApproveStep>({
  kind: 'approve',
  schema: approveSchema.prefault({}),
  describe: (a) => `approval (within ${formatDuration(a.timeout)}, else ${a.onTimeout})`,
  phase: () => 'awaiting-approval',
  gate: true,
});
