import { z } from 'zod';
import { defineMetric, nonNegative, usable } from './metric';

/** Mean quality score of the judged answers (higher is better: the seed's trigger had it backwards). */
export const avgQualityScore = defineMetric({
  name: 'avg_quality_score',
  description: 'mean quality score of the judged answers',
  unit: 'score',
  direction: 'below',
  sampleOf: 'scores',
  window: 'long',
  defaultThreshold: 3.0,
  threshold: z.number(),
  read: (stats) => {
    const scores = nonNegative(stats.scored);
    return {
      value: scores > 0 ? usable(stats.qualityMean) : null,
      requests: nonNegative(stats.requests),
      scores,
    };
  },
});
