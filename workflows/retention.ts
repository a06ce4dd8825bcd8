import { log, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '5 seconds', maximumInterval: '1 minute', maximumAttempts: 5 },
});

/**
 * One retention pass: deletes captured prompts and answers older than `retentionMs` (events stay). Run by
 * the `capture-retention` Temporal Schedule (src/temporal/retention-schedule.ts), every hour by default.
 */
export async function captureRetentionWorkflow(input: { retentionMs: number }): Promise<{
  events: number;
  feedback: number;
}> {
  const purged = await acts.purgeCapturedText({ retentionMs: input.retentionMs });
  log.info('captured text past retention deleted', purged);
  return purged;
}
