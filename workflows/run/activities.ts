/** The activity proxies of the rollout workflow, one per set of options. */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { ALERTS, DURABLE } from '../activity-options';

export const acts = proxyActivities<Activities>(DURABLE);
export const alerts = proxyActivities<Activities>(ALERTS);

/**
 * Scoring is a pipeline with its own options: long enough for seconds-slow judges, heartbeating (a lost
 * worker is noticed in 30 s, and the retry resumes after the committed chunks), a few attempts, and then
 * the rollout goes on deciding on the evidence it has instead of failing.
 */
export const scoring = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 3 },
});

/** Pure computations whose result must be recorded in the history (a local activity's result is). */
export const local = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds' },
});
