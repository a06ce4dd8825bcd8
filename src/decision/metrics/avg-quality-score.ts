import { z } from 'zod';
import { defineMetric, nonNegative, usable } from './metric';

/** Mean quality score of the judged answers, on [0, 1] (higher is better: the seed's trigger had it backwards). */
export const avgQualityScore = defineMetric({
  name: 'avg_quality_score',
  description: 'mean quality score of the judged answers',
  unit: 'score',
  direction: 'below',
  sampleOf: 'scores',
  window: 'long',
  // Scores are on [0, 1] (every evaluator normalised, docs/evaluators.md): 0.5 is the old 3 on a 1-5 judge,
  // and a threshold above 1 (a 1-5 habit) would fire on every rollout.
  defaultThreshold: 0.5,
  threshold: z
    .number()
    .min(0)
    .max(1, 'avg_quality_score is a mean score on [0, 1] (a 1-5 threshold t is (t-1)/4, e.g. 3 → 0.5)'),
  read: (stats) => {
    const scores = nonNegative(stats.scored);
    return {
      value: scores > 0 ? usable(stats.qualityMean) : null,
      requests: nonNegative(stats.requests),
      scores,
    };
  },
});
