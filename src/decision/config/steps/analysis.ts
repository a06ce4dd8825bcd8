/**
 * `{ "analysis": { "checks": [ ... ], "count": 3 } }`: measure the team's own metrics (a Prometheus query,
 * an HTTP JSON endpoint; src/decision/analysis/check.ts) at this place in the list, in the manner of Argo's
 * analysis step: each check is measured every `interval` until it has `count` conclusive measurements. A
 * check whose failures exceed its `failureLimit` rolls back; an inconclusive one (no value, an unreachable
 * source) never passes: the step waits, and after `holdAfter` says so with an alert. The triggers keep
 * watching; a person's promote passes the step.
 */
import { z } from 'zod';
import { isPerArm, metricCheckSchema } from '../../analysis/check';
import { durationSchema } from '../duration-schema';
import { defineStepKind } from './kind';

export const checksSchema = z
  .array(metricCheckSchema)
  .min(1, 'at least one check')
  .max(20, 'at most 20 checks')
  .superRefine((checks, ctx) => {
    const seen = new Set<string>();
    checks.forEach((c, i) => {
      if (seen.has(c.name))
        ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `check '${c.name}' is named twice` });
      seen.add(c.name);
    });
  });

export const analysisStepSchema = z.strictObject({
  checks: checksSchema,
  /** Conclusive measurements each check needs before the step ends. */
  count: z.number().int().min(1).max(1000).default(1),
  /** Inconclusive this long: the step says it is held, with an alert. */
  holdAfter: durationSchema('10m').refine((ms) => ms > 0, 'must be longer than 0'),
});

export type AnalysisStep = z.output<typeof analysisStepSchema>;

export const analysis = defineStepKind<AnalysisStep>({
  kind: 'analysis',
  schema: analysisStepSchema,
  describe: (a) => `analysis ${a.checks.map((c) => c.name).join(', ')} (${a.count}x)`,
  phase: () => 'analysis',
  gate: true,
  check({ index, steps }) {
    const shares = steps.slice(0, index).flatMap((s) => (s.share === undefined ? [] : [s.share]));
    const share = shares.at(-1) ?? 0;
    const { checks } = steps[index].value as AnalysisStep;
    return checks
      .filter((c) => isPerArm(c.provider) && !(share > 0 && share < 10_000))
      .map(
        (c) =>
          `check '${c.name}' compares the arms ({{arm}}): place it after a setShare below 10000, where both serve`,
      );
  },
});

/**
 * The spec's `analysis`: checks measured all along the canary and the bake (`during`), each at its own
 * interval. A failed check rolls back like a trigger; an inconclusive one keeps a canary step from
 * advancing and a bake from ending, and after `holdAfter` says so with an alert.
 */
export const backgroundAnalysisSchema = z.strictObject({
  checks: checksSchema,
  during: z
    .array(z.enum(['canary', 'bake']))
    .min(1)
    .default(['canary', 'bake']),
  holdAfter: durationSchema('10m').refine((ms) => ms > 0, 'must be longer than 0'),
});

export type BackgroundAnalysis = z.output<typeof backgroundAnalysisSchema>;
