import { z } from 'zod';
import { defineMetric, nonNegative, usable } from './metric';

/**
 * Requests the model refused (400, content policy, unsupported parameters, untranslatable fields) per
 * request it was sent. No default threshold: an application's own malformed requests are refused by every
 * model, so the canary policy compares this rate with stable's instead; a spec may still set an absolute
 * ceiling.
 */
export const refusalRate = defineMetric({
  name: 'refusal_rate',
  description: 'share of requests the model refused (400s, content policy, unsupported parameters)',
  unit: 'ratio',
  direction: 'above',
  sampleOf: 'requests',
  window: 'short',
  threshold: z.number().min(0).max(1),
  read: (stats) => {
    const refusals = nonNegative(stats.refusals);
    const requests = nonNegative(stats.requests) + refusals;
    return {
      value: requests > 0 ? usable(refusals / requests) : null,
      requests,
      scores: nonNegative(stats.scored),
    };
  },
});
