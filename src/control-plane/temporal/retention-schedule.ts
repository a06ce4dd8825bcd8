import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { formatDuration, parseDuration } from '../../decision/config/duration';
import { TASK_QUEUE } from './connection';

export const RETENTION_SCHEDULE_ID = 'capture-retention';
/** How long captured prompts and answers are kept by default. */
export const DEFAULT_CAPTURE_RETENTION = '7d';

/** How long raw request events (and shadow comparisons) are kept by default: dropped a day at a time. */
export const DEFAULT_EVENT_RETENTION = '30d';
/** How long the per-minute rollups that decisions read are kept by default. */
export const DEFAULT_ROLLUP_RETENTION = '90d';

function durationFromEnv(name: string, fallback: string, env: NodeJS.ProcessEnv): number {
  const value = env[name]?.trim() || fallback;
  try {
    return parseDuration(value);
  } catch (err) {
    throw new Error(`${name}: ${(err as Error).message}`);
  }
}

/** MODEL_ROLLOUT_CAPTURE_RETENTION (e.g. `7d`, `36h`), else the default, in milliseconds. */
export function captureRetentionMs(env: NodeJS.ProcessEnv = process.env): number {
  return durationFromEnv('MODEL_ROLLOUT_CAPTURE_RETENTION', DEFAULT_CAPTURE_RETENTION, env);
}

/** MODEL_ROLLOUT_EVENT_RETENTION, else 30 days, in milliseconds (at least one day: a day is dropped whole). */
export function eventRetentionMs(env: NodeJS.ProcessEnv = process.env): number {
  const ms = durationFromEnv('MODEL_ROLLOUT_EVENT_RETENTION', DEFAULT_EVENT_RETENTION, env);
  if (ms < 86_400_000)
    throw new Error(`MODEL_ROLLOUT_EVENT_RETENTION: must be at least 1d, got ${formatDuration(ms)}`);
  return ms;
}

/** MODEL_ROLLOUT_ROLLUP_RETENTION, else 90 days, in milliseconds. */
export function rollupRetentionMs(env: NodeJS.ProcessEnv = process.env): number {
  return durationFromEnv('MODEL_ROLLOUT_ROLLUP_RETENTION', DEFAULT_ROLLUP_RETENTION, env);
}

/**
 * Creates (or updates) the Temporal Schedule that enforces the retentions: every `every` it runs
 * `eventRetentionWorkflow`, which creates the event partitions ahead, drops the days of raw events older
 * than `eventRetentionMs`, deletes rollups older than `rollupRetentionMs` and nulls captured text older than
 * `retentionMs`. A Schedule, not a timer in some process: it runs whichever worker is up, survives
 * restarts, and is visible in the Temporal UI.
 */
export async function ensureRetentionSchedule(
  client: Client,
  options: {
    retentionMs: number;
    eventRetentionMs?: number;
    rollupRetentionMs?: number;
    partitionsAhead?: number;
    every?: string;
    taskQueue?: string;
    /** One schedule per deployment: deployments sharing a namespace (or tests sharing a server) name their own. */
    scheduleId?: string;
  },
): Promise<void> {
  const scheduleId = options.scheduleId ?? RETENTION_SCHEDULE_ID;
  const every = options.every ?? '1h';
  const eventMs = options.eventRetentionMs ?? eventRetentionMs();
  const rollupMs = options.rollupRetentionMs ?? rollupRetentionMs();
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'eventRetentionWorkflow',
    taskQueue: options.taskQueue ?? TASK_QUEUE,
    args: [
      {
        retentionMs: options.retentionMs,
        eventRetentionMs: eventMs,
        rollupRetentionMs: rollupMs,
        partitionsAhead: options.partitionsAhead ?? 7,
      },
    ],
    workflowId: scheduleId,
  };
  const spec = { intervals: [{ every: parseDuration(every) }] };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: parseDuration('1h') };
  try {
    await client.schedule.create({
      scheduleId,
      spec,
      action,
      policies,
      memo: {
        purpose:
          `null captured text older than ${formatDuration(options.retentionMs)}, drop events older than ` +
          `${formatDuration(eventMs)}, delete rollups older than ${formatDuration(rollupMs)}`,
      },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    // Another worker made it, perhaps with another retention: the latest configuration wins.
    await client.schedule.getHandle(scheduleId).update((prev) => ({ ...prev, spec, action, policies }));
  }
}
