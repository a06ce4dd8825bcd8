import { z } from 'zod';
import { defineMetric, nonNegative, usable } from './metric';

/** The 95th percentile of served requests' latency, in ms. */
export const p95LatencyMs = defineMetric({
  name: 'p95_latency_ms',
  description: '95th percentile latency of served requests, ms',
  unit: 'ms',
  direction: 'above',
  sampleOf: 'requests',
  window: 'short',
  defaultThreshold: 30000,
  threshold: z.number().positive(),
  read: (stats) => {
    const requests = nonNegative(stats.requests);
    return {
      value: requests > 0 ? usable(stats.p95LatencyMs) : null,
      requests,
      scores: nonNegative(stats.scored),
    };
  },
});
