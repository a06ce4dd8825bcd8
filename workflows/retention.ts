import { log, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '5 seconds', maximumInterval: '1 minute', maximumAttempts: 5 },
});

/**
 * One retention pass: deletes captured prompts and answers older than `retentionMs` (events stay). Run by
 * the `capture-retention` Temporal Schedule before event partitions existed; kept for runs in flight.
 */
export async function captureRetentionWorkflow(input: { retentionMs: number }): Promise<{
  events: number;
  feedback: number;
}> {
  const purged = await acts.purgeCapturedText({ retentionMs: input.retentionMs });
  log.info('captured text past retention deleted', purged);
  return purged;
}

export interface EventRetentionInput {
  /** Captured prompts and answers are nulled past this (the events stay), milliseconds. */
  retentionMs: number;
  /** Raw events are dropped a day (partition) at a time past this. */
  eventRetentionMs: number;
  /** Per-minute rollups are deleted past this. */
  rollupRetentionMs: number;
  /** Daily partitions created ahead of today. */
  partitionsAhead: number;
}

/**
 * One retention pass over request events, run by the `capture-retention` Temporal Schedule
 * (src/control-plane/temporal/retention-schedule.ts), every hour by default: creates the daily partitions ahead, drops the
 * days past the event retention, deletes expired rollups, and nulls captured text past its retention.
 */
export async function eventRetentionWorkflow(input: EventRetentionInput): Promise<{
  events: number;
  feedback: number;
  partitionsCreated: number;
  partitionsDropped: string[];
  rollupsDeleted: number;
}> {
  const parts = await acts.maintainEventPartitions({
    eventRetentionMs: input.eventRetentionMs,
    rollupRetentionMs: input.rollupRetentionMs,
    partitionsAhead: input.partitionsAhead,
  });
  const purged = await acts.purgeCapturedText({ retentionMs: input.retentionMs });
  const result = {
    ...purged,
    partitionsCreated: parts.created,
    partitionsDropped: parts.dropped,
    rollupsDeleted: parts.rollupsDeleted,
  };
  log.info('event retention pass', result);
  return result;
}
