import type { ActivityOptions } from '@temporalio/workflow';

/**
 * How the workflows call activities, defined once.
 *
 * Infrastructure errors (Postgres restarting, a network path down, a worker deploy) are retried without limit
 * with a capped backoff: a rollout lives for days, and an outage of minutes must delay it, never fail it.
 * Business errors (a routing conflict, an invalid input, a route that no longer exists) are thrown by the
 * activities as non-retryable failures, so they come back at once and the story handles them.
 */
export const DURABLE: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
};

/**
 * Routing changes (claim, step, restore) are one short transaction each, idempotent by key: an attempt that
 * has not answered in 15 seconds (a worker that died mid-change) is retried by another worker then, not after
 * a minute, because a rollback waits on it. A slow attempt that is still running is harmless: its retry
 * finds the change applied, or waits on the route's row lock.
 */
export const ROUTING: ActivityOptions = { ...DURABLE, startToCloseTimeout: '15 seconds' };

/**
 * Alerts are retried a few times and never waited on longer than that: a webhook that hangs, fails or
 * redirects must not hold a rollout, and every alert is sent only after the routing change it announces.
 */
export const ALERTS: ActivityOptions = {
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '5 seconds', maximumAttempts: 5 },
};
