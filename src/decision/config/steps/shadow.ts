/**
 * `{ "shadow": { "rate": 0.25, "minComparisons": 50, "maxDuration": "30m", "require": "not-worse" } }`: a
 * sampled share of stable requests also goes to the candidate and the answers are compared in pairs; the
 * sign test's report decides whether the rollout goes on (`require`), or is its outcome when no later step
 * moves traffic (shadow-only).
 */
import { z } from 'zod';
import { durationSchema } from '../duration-schema';
import { defineStepKind } from './kind';

export const shadowSchema = z.strictObject({
  /** Fraction of stable requests also sent to the candidate. Below 1 keeps the extra cost bounded. */
  rate: z.number().gt(0).max(1).default(0.25),
  /** The step ends once this many pairs have been compared, */
  minComparisons: z.number().int().positive().default(50),
  /** or at the latest after this long, */
  maxDuration: durationSchema('30m'),
  /** or when the shadow calls have cost this much (USD). */
  budgetUsd: z.number().positive().optional(),
  /** What the report needs for the rollout to go on: 'promote', merely not 'keep-stable', or nothing. */
  require: z.enum(['promote', 'not-worse', 'none']).default('not-worse'),
});

export type ShadowStep = z.output<typeof shadowSchema>;

export const shadow = defineStepKind<ShadowStep>({
  kind: 'shadow',
  schema: shadowSchema.prefault({}),
  describe: (s) => `shadow ${Math.round(s.rate * 100)}% of stable requests (until ${s.minComparisons} pairs)`,
  phase: () => 'shadow',
  report: true,
  check: ({ index, steps }) =>
    steps.slice(0, index).some((s) => s.share !== undefined)
      ? ['a shadow step comes before any setShare (it compares against a stable model serving all traffic)']
      : [],
});
