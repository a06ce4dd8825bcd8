import { z } from 'zod';
import { ALERT_KINDS } from '../../control-plane/alerts/kinds';
import { durationSchema } from './duration-schema';
import { evaluatorSchema } from './evaluators';
import { placeHooks, webhooksSchema } from './hooks';
import { backgroundAnalysisSchema } from './steps/analysis';
import { approveSchema } from './steps/approve';
import { defaultSteps } from './steps/default-list';
import { shadowSchema } from './steps/shadow';
import { stepsSchema, strategyOf } from './steps';
import { targetSchema, targetWithFallbacksSchema, type TargetWithFallbacks } from './target';
import { DEFAULT_STEPS, DEFAULT_TRIGGER_SETTINGS, resolvePolicy, validateSteps } from '../policy';
import { METRICS, type MetricName } from '../metrics';

/**
 * The rollout spec: what a person asks for when starting a rollout. Validated before the workflow starts
 * (the CLI and client refuse a bad one with the field and the reason) and again inside the workflow, so
 * the schema is pure code (zod only) that the workflow bundle can carry. Durations accept '30s', '5m',
 * '1h30m' or milliseconds and come out as milliseconds. A parsed spec holds its step list (`steps`, given
 * or made from the strategy fields) and its policy resolved in full, and parses again to itself.
 */

const duration = durationSchema;

export const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
export const routeNameSchema = z
  .string({ error: 'route is required' })
  .regex(ROUTE_NAME, 'route must be 1-100 letters, digits, ".", "_" or "-", starting with a letter or digit');

/** A candidate written `provider:model` (no fallbacks), or `{ target, fallbacks }`. */
const candidateSchema = z.preprocess(
  (input) => (typeof input === 'string' ? { target: input, fallbacks: [] } : input),
  targetWithFallbacksSchema,
) as unknown as z.ZodType<TargetWithFallbacks, unknown>;

/** The policy, resolved in full on the current defaults (resolvePolicy: the one place that does it). */
const policySchema = z
  .strictObject({
    policy: z.enum(['sequential', 'ratio']).default('sequential'),
    sequential: z.record(z.string(), z.unknown()).optional(),
    ratio: z.record(z.string(), z.unknown()).optional(),
  })
  .prefault({})
  .transform((value, ctx) => {
    try {
      return resolvePolicy(value as never);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message, path: [value.policy] });
      return z.NEVER;
    }
  });

/** A threshold per metric of the registry (src/decision/metrics), each with its own bounds. */
const thresholdsSchema = z
  .strictObject(
    Object.fromEntries(METRICS.map((m) => [m.name, m.threshold.optional()])) as {
      [K in MetricName]: z.ZodOptional<z.ZodType<number>>;
    },
  )
  .prefault({});

const channelName = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9._-]{0,62}$/,
    'a channel name (lower-case letters, digits, ".", "_", "-"), not a URL',
  );

export const rolloutSpecSchema = z
  .strictObject({
    route: routeNameSchema,
    candidate: candidateSchema,
    /**
     * The default step list's shape (canary ladder, blue-green switch, or shadow only). With `steps`, it is
     * derived from the list (and may be given only if it agrees).
     */
    strategy: z.enum(['canary', 'blue-green', 'shadow-only']).optional(),
    /** Who started it (recorded in the audit trail). */
    actor: z.string().min(1).default('model-rollout'),
    /** The steps, in order (./steps/index.ts). Without it, the fields below make the default list. */
    steps: stepsSchema.optional(),
    // ---- the default list's fields (refused beside `steps`) ----
    shadow: shadowSchema
      .extend({
        /** Default: on for shadow-only, off otherwise. */
        enabled: z.boolean().optional(),
      })
      .optional(),
    canary: z
      .strictObject({
        steps: z
          .array(z.number().int())
          .default([...DEFAULT_STEPS])
          .superRefine((steps, ctx) => {
            for (const problem of validateSteps(steps)) ctx.addIssue({ code: 'custom', message: problem });
          }),
      })
      .optional(),
    approval: approveSchema.extend({ required: z.boolean().default(false) }).optional(),
    bake: z.strictObject({ duration: duration('30m') }).optional(),
    evaluation: z
      .strictObject({
        /** Time between policy checks. Production: minutes; tests and the demo: seconds. */
        interval: duration('5m'),
        /**
         * At most this many answers per scoring batch (one batch per interval, running during it for at
         * most 80% of it, at most 4 minutes): time and `budgetUsd` bound a batch, this is a backstop.
         */
        scoreBatch: z.number().int().positive().max(5000).default(2000),
        /** LLM judge for answers without a reference; none means reference, feedback and heuristics only. */
        judge: targetSchema.optional(),
        /**
         * Evaluators combined by weight (judge, http, checks, feedback, reference); replaces the default
         * list (reference, feedback, then `judge` or the heuristic). See docs/evaluators.md.
         */
        evaluators: z.array(evaluatorSchema).max(10).optional(),
        /** Evaluations in flight at most per batch: with a 1.5 s judge, 16 score ~600 answers a minute. */
        concurrency: z.number().int().positive().max(256).default(16),
        /** Per judge call; a judge slower than this is a counted failure. */
        judgeTimeout: duration('30s'),
        /**
         * The fraction of each arm's answers that may be scored (a fixed sample by event id). The candidate's
         * answers are scarce: keep its rate at 1 and lower the stable one to cut judge cost.
         */
        sample: z
          .strictObject({
            stable: z.number().gt(0).max(1).default(1),
            candidate: z.number().gt(0).max(1).default(1),
          })
          .prefault({}),
        /** What judging may cost this rollout in all, USD; past it scoring stops and status says so. */
        budgetUsd: z.number().positive().optional(),
        /** A canary with no new score for this long raises an alert and shows "no quality evidence". */
        noEvidenceAfter: duration('15m'),
      })
      .prefault({}),
    triggers: z
      .strictObject({
        interval: duration('5m'),
        thresholds: thresholdsSchema,
        minRequests: z.number().int().min(0).default(DEFAULT_TRIGGER_SETTINGS.minRequests),
        minScores: z.number().int().min(0).default(DEFAULT_TRIGGER_SETTINGS.minScores),
        /** Windows shorter than production (e.g. for a demo), in minutes; default the seed's 15/60. */
        windowMinutes: z
          .strictObject({ short: z.number().positive(), long: z.number().positive() })
          .optional(),
        /**
         * Every trigger has its direction. The seed's direction-less rule ('legacy-greater-than', which rolls
         * back on good quality) is `legacyGreaterThan()` in tests and benches, never in a spec.
         */
        mode: z
          .literal('directional', {
            error: "only 'directional': the seed's 'legacy-greater-than' rule rolls back on good quality",
          })
          .default('directional'),
      })
      .prefault({}),
    policy: policySchema,
    /**
     * How long a rollout may go without progress (like Argo's progressDeadlineSeconds): a canary step that
     * has not advanced after `step`, or a rollout not promoted `rollout` after it started, gets `action`:
     * 'hold' alerts and keeps the current share until a person promotes, resumes or rolls back; 'rollback'
     * rolls back. Time paused by a person does not count against a step.
     */
    progressDeadline: z
      .strictObject({
        step: duration('24h'),
        rollout: duration('7d'),
        action: z.enum(['hold', 'rollback']).default('hold'),
      })
      .prefault({}),
    alerts: z
      .strictObject({
        /** Names of alert channels configured on the worker, for every kind or for some kinds only. */
        channels: z
          .array(
            z.union(
              [
                channelName.transform((name) => ({ name })),
                z.strictObject({ name: channelName, kinds: z.array(z.enum(ALERT_KINDS)).min(1).optional() }),
              ],
              { error: 'a channel name configured on the worker (or { name, kinds }), not a URL' },
            ),
          )
          .default([]),
        /** A canary step held this long raises a "hold" alert with what it waits for and the estimate. */
        holdAfter: duration('30m'),
      })
      .prefault({}),
    /** Lifecycle webhooks (pre-rollout, confirm-promotion, post-rollout, rollback, event): ./hooks.ts. */
    webhooks: webhooksSchema,
    /** Checks of the team's own metrics all along the canary and the bake: ./steps/analysis.ts. */
    analysis: backgroundAnalysisSchema.optional(),
  })
  .superRefine((spec, ctx) => {
    const { step, rollout } = spec.progressDeadline;
    for (const [key, ms] of [
      ['step', step],
      ['rollout', rollout],
    ] as const) {
      if (!(ms > 0))
        ctx.addIssue({ code: 'custom', path: ['progressDeadline', key], message: 'must be longer than 0' });
    }
    if (spec.steps) {
      for (const field of ['shadow', 'canary', 'approval', 'bake'] as const) {
        if (spec[field] !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: [field],
            message: `with 'steps' the list says everything: put the ${field} settings in its steps`,
          });
      }
      const derived = strategyOf(spec.steps);
      if (spec.strategy !== undefined && spec.strategy !== derived)
        ctx.addIssue({
          code: 'custom',
          path: ['strategy'],
          message: `the steps make a ${derived} rollout, not ${spec.strategy}`,
        });
    } else if (spec.strategy === 'shadow-only' && spec.shadow?.enabled === false) {
      ctx.addIssue({
        code: 'custom',
        path: ['shadow', 'enabled'],
        message: 'a shadow-only rollout needs the shadow phase',
      });
    }
  })
  .transform(({ shadow, canary, approval, bake, strategy, steps: given, webhooks: hooks, ...spec }) => {
    const listed =
      given ??
      defaultSteps({
        strategy: strategy ?? 'canary',
        shadow: {
          ...(shadow ?? shadowSchema.parse({})),
          enabled: shadow?.enabled ?? strategy === 'shadow-only',
        },
        canary: { steps: canary?.steps ?? [...DEFAULT_STEPS] },
        approval: approval ?? { ...approveSchema.parse({}), required: false },
        bake: { duration: bake?.duration ?? 30 * 60_000 },
      });
    // The gate hooks become webhook steps; only post-rollout, rollback and event hooks stay in `webhooks`.
    const { steps, webhooks } = placeHooks(listed, hooks);
    return { ...spec, strategy: strategyOf(steps), steps, webhooks };
  });

export type RolloutSpecInput = z.input<typeof rolloutSpecSchema>;
export type RolloutSpec = z.output<typeof rolloutSpecSchema>;

export interface SpecIssue {
  field: string;
  reason: string;
}

export class InvalidSpecError extends Error {
  constructor(readonly issues: SpecIssue[]) {
    super(`invalid rollout spec: ${issues.map((i) => `${i.field}: ${i.reason}`).join('; ')}`);
    this.name = 'InvalidSpecError';
  }
}

export const WEBHOOK_URL_REFUSED =
  'a webhook URL is a secret and would be stored in the workflow history: configure the channel on the worker ' +
  '(ALERT_CHANNELS_FILE) and name it in alerts.channels (start --alert <channel>)';

/** Parses and validates a spec; throws InvalidSpecError naming each bad field and why. */
export function parseRolloutSpec(input: unknown): RolloutSpec {
  // Named before the schema speaks: "unknown field" would not say why a URL is refused.
  const alerts = (input as { alerts?: { webhookUrl?: unknown } } | null)?.alerts;
  if (alerts?.webhookUrl !== undefined)
    throw new InvalidSpecError([{ field: 'alerts.webhookUrl', reason: WEBHOOK_URL_REFUSED }]);
  const result = rolloutSpecSchema.safeParse(input);
  if (result.success) return result.data;
  throw new InvalidSpecError(
    result.error.issues.map((issue) => ({
      field:
        issue.code === 'unrecognized_keys'
          ? issue.keys.map((k) => [...issue.path, k].join('.')).join(', ')
          : issue.path.map(String).join('.') || '(root)',
      reason: issue.code === 'unrecognized_keys' ? 'unknown field' : issue.message,
    })),
  );
}

// (in a module of its own: the CLI's status code names rollouts without loading the spec's schemas)
export { rolloutWorkflowId } from './workflow-id';
