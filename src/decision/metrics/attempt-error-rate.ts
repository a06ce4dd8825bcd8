import { z } from 'zod';
import { defineMetric, nonNegative, usable } from './metric';

/**
 * Provider attempts that failed (retried to success or not) per attempt. No default threshold: the canary
 * policy compares it with stable's; a spec may set an absolute ceiling.
 */
export const attemptErrorRate = defineMetric({
  name: 'attempt_error_rate',
  description: 'share of provider attempts that failed, retries included',
  unit: 'ratio',
  direction: 'above',
  sampleOf: 'requests',
  window: 'short',
  threshold: z.number().min(0).max(1),
  read: (stats) => {
    const requests = nonNegative(stats.requests);
    const attempts = stats.attempts === undefined ? requests : nonNegative(stats.attempts);
    return {
      value: attempts > 0 ? usable(nonNegative(stats.attemptErrors) / attempts) : null,
      requests,
      scores: nonNegative(stats.scored),
    };
  },
});
