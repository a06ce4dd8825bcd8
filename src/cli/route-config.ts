/**
 * A route config file, as `model-rollout routes set --file route.json` reads it:
 *
 *   { "name": "support-bot",
 *     "blue": "anthropic:claude-sonnet-4",
 *     "green": { "target": "openai:gpt-4o", "fallbacks": ["anthropic:claude-sonnet-4"] },
 *     "stable": "blue" }
 *
 * Slots take `provider:model` or `{ target, fallbacks }` (targets in either form, see src/decision/config/target.ts).
 * When the route exists, omitted fields keep their current value and `"green": null` removes the green slot.
 */
import { z } from 'zod';
import { ROUTE_NAME } from '../decision/config/rollout-spec';
import { targetWithFallbacksSchema, type TargetWithFallbacks } from '../decision/config/target';

const slotSchema = z.preprocess((input, ctx) => {
  if (typeof input === 'string') return { target: input, fallbacks: [] };
  if (input === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: 'is required: "provider:model" or { "target": ..., "fallbacks": [...] }',
      input,
    });
    return z.NEVER;
  }
  return input;
}, targetWithFallbacksSchema) as unknown as z.ZodType<TargetWithFallbacks, unknown>;

const nameSchema = z
  .string({
    error: (issue) =>
      issue.input === undefined
        ? 'is required (the route name applications send as "model")'
        : 'must be a string',
  })
  .regex(ROUTE_NAME, 'must be 1-100 letters, digits, ".", "_" or "-", starting with a letter or digit');

export const routeConfigSchema = z
  .strictObject({
    name: nameSchema,
    blue: slotSchema,
    green: slotSchema.nullable().optional(),
    stable: z.enum(['blue', 'green'], { error: 'must be "blue" or "green"' }).optional(),
  })
  .superRefine((config, ctx) => {
    if (config.stable === 'green' && !config.green) {
      ctx.addIssue({ code: 'custom', path: ['green'], message: 'is required when stable is "green"' });
    }
  });

export type RouteConfig = z.output<typeof routeConfigSchema>;

export interface RouteConfigIssue {
  field: string;
  reason: string;
}

export class InvalidRouteConfigError extends Error {
  constructor(
    readonly source: string,
    readonly issues: RouteConfigIssue[],
  ) {
    super(`invalid route config ${source}:\n${issues.map((i) => `  ${i.field}: ${i.reason}`).join('\n')}`);
    this.name = 'InvalidRouteConfigError';
  }
}

/** Validates a parsed config; throws InvalidRouteConfigError naming every bad field and why. */
export function parseRouteConfig(input: unknown, source = '(input)'): RouteConfig {
  const result = routeConfigSchema.safeParse(input);
  if (result.success) return result.data;
  throw new InvalidRouteConfigError(
    source,
    result.error.issues.map((issue) => ({
      field:
        issue.code === 'unrecognized_keys'
          ? issue.keys.map((k) => formatPath([...issue.path, k])).join(', ')
          : formatPath(issue.path) || '(root)',
      reason: issue.code === 'unrecognized_keys' ? 'unknown field' : issue.message,
    })),
  );
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');
}
