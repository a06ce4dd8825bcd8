import { z } from 'zod';
import { defineMetric, perRequest } from './metric';

/** Requests that failed after the fallback chain, per served request (refusals and hang-ups are not in it). */
export const errorRate = defineMetric({
  name: 'error_rate',
  description: 'share of served requests that failed (after fallbacks)',
  unit: 'ratio',
  direction: 'above',
  sampleOf: 'requests',
  window: 'short',
  defaultThreshold: 0.05,
  threshold: z.number().min(0).max(1),
  read: (stats) => perRequest(stats, stats.errors),
});
