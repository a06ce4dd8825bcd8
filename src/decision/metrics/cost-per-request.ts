import { z } from 'zod';
import { defineMetric, perRequest } from './metric';

/** What a served request cost, USD. */
export const costPerRequest = defineMetric({
  name: 'cost_per_request',
  description: 'cost per served request, USD',
  unit: 'usd',
  direction: 'above',
  sampleOf: 'requests',
  window: 'long',
  defaultThreshold: 0.1,
  threshold: z.number().min(0),
  read: (stats) => perRequest(stats, stats.costUsd),
});
