import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { formatDuration, parseDuration } from '../config/duration';
import { TASK_QUEUE } from './connection';

export const RETENTION_SCHEDULE_ID = 'capture-retention';
/** How long captured prompts and answers are kept by default. */
export const DEFAULT_CAPTURE_RETENTION = '7d';

/** MODEL_ROLLOUT_CAPTURE_RETENTION (e.g. `7d`, `36h`), else the default, in milliseconds. */
export function captureRetentionMs(env: NodeJS.ProcessEnv = process.env): number {
  const value = env.MODEL_ROLLOUT_CAPTURE_RETENTION?.trim() || DEFAULT_CAPTURE_RETENTION;
  try {
    return parseDuration(value);
  } catch (err) {
    throw new Error(`MODEL_ROLLOUT_CAPTURE_RETENTION: ${(err as Error).message}`);
  }
}

/**
 * Creates (or updates) the Temporal Schedule that enforces the capture retention: every `every` it runs
 * `captureRetentionWorkflow`, which deletes captured text older than `retentionMs`. A Schedule, not a timer
 * in some process: it runs whichever worker is up, survives restarts, and is visible in the Temporal UI.
 */
export async function ensureRetentionSchedule(
  client: Client,
  options: { retentionMs: number; every?: string; taskQueue?: string },
): Promise<void> {
  const every = options.every ?? '1h';
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'captureRetentionWorkflow',
    taskQueue: options.taskQueue ?? TASK_QUEUE,
    args: [{ retentionMs: options.retentionMs }],
    workflowId: 'capture-retention',
  };
  const spec = { intervals: [{ every: parseDuration(every) }] };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: parseDuration('1h') };
  try {
    await client.schedule.create({
      scheduleId: RETENTION_SCHEDULE_ID,
      spec,
      action,
      policies,
      memo: {
        purpose: `delete captured prompts and answers older than ${formatDuration(options.retentionMs)}`,
      },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    // Another worker made it, perhaps with another retention: the latest configuration wins.
    await client.schedule
      .getHandle(RETENTION_SCHEDULE_ID)
      .update((prev) => ({ ...prev, spec, action, policies }));
  }
}
