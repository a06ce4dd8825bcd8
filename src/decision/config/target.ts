import { z } from 'zod';
import type { Target, TargetParams } from '../../data-plane/providers/types';

/**
 * Targets in configuration: either the short form `provider:model`, split on the FIRST colon (model
 * names may contain `:` and `/`, e.g. `openrouter:meta-llama/llama-3-70b:free`), or an object
 * `{ provider, model, params?, baseUrl? }`. A target with fallbacks is `{ target, fallbacks }`, where
 * every element may use either form. Errors name the field and the reason (`fallbacks[1].model: ...`).
 */

const PROVIDER_NAME = /^[a-z0-9][a-z0-9_.-]*$/;

const required = (field: string) => (issue: { input: unknown }) =>
  issue.input === undefined ? `${field} is required` : `${field} must be a string`;

export const providerNameSchema = z
  .string({ error: required('provider') })
  .min(1, { message: 'provider is required', abort: true })
  .regex(PROVIDER_NAME, 'provider must be lowercase letters, digits, "-", "_" or "." (e.g. "openai")');

export const modelNameSchema = z
  .string({ error: required('model') })
  .min(1, { message: 'model is required', abort: true })
  .refine((model) => model.trim() === model, 'model must not start or end with whitespace');

export const targetParamsSchema: z.ZodType<TargetParams> = z.strictObject({
  temperature: z.number().min(0).max(2).optional(),
  maxTokens: z.number().int().positive().max(1_000_000).optional(),
  json: z.boolean().optional(),
});

export const targetObjectSchema = z.strictObject({
  provider: providerNameSchema,
  model: modelNameSchema,
  params: targetParamsSchema.optional(),
  baseUrl: z.url({ protocol: /^https?$/, error: 'baseUrl must be an http(s) URL' }).optional(),
  // A larger-context fallback: tried only when an earlier target refused the prompt as too long.
  contextFallback: z.boolean().optional(),
});

/** Splits `provider:model` on the first colon; undefined when there is no colon. */
export function splitTargetString(text: string): { provider: string; model: string } | undefined {
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  return { provider: text.slice(0, colon), model: text.slice(colon + 1) };
}

/** A target in either form; strings become objects before validation so both get the same rules. */
export const targetSchema: z.ZodType<Target, unknown> = z.preprocess((input, ctx) => {
  if (typeof input !== 'string') {
    if (input !== null && typeof input === 'object' && !Array.isArray(input)) return input;
    ctx.addIssue({ code: 'custom', message: 'expected "provider:model" or { provider, model }', input });
    return z.NEVER;
  }
  const parts = splitTargetString(input.trim());
  if (!parts) {
    ctx.addIssue({
      code: 'custom',
      message: `expected "provider:model" (e.g. "openai:gpt-4o"), got "${input}"`,
      input,
    });
    return z.NEVER;
  }
  return parts;
}, targetObjectSchema) as unknown as z.ZodType<Target, unknown>;

export interface TargetWithFallbacks {
  target: Target;
  fallbacks: Target[];
}

export const targetWithFallbacksSchema: z.ZodType<TargetWithFallbacks, unknown> = z.strictObject({
  target: targetSchema,
  fallbacks: z.array(targetSchema).default([]),
}) as unknown as z.ZodType<TargetWithFallbacks, unknown>;

export interface ConfigIssue {
  field: string;
  reason: string;
}

export class TargetValidationError extends Error {
  constructor(
    readonly source: string,
    readonly issues: ConfigIssue[],
  ) {
    super(`${source}: ${issues.map((issue) => `${issue.field}: ${issue.reason}`).join('; ')}`);
    this.name = 'TargetValidationError';
  }
}

export function parseTarget(input: unknown, source = 'target'): Target {
  return parseWith(targetSchema, input, source);
}

export function parseTargetWithFallbacks(input: unknown, source = 'target'): TargetWithFallbacks {
  return parseWith(targetWithFallbacksSchema, input, source);
}

/** The ordered list a fallback chain walks: the target, then its fallbacks. */
export function chainOf(config: TargetWithFallbacks): Target[] {
  return [config.target, ...config.fallbacks];
}

/** `provider:model` (params and baseUrl are not part of the name). */
export function formatTarget(target: Pick<Target, 'provider' | 'model'>): string {
  return `${target.provider}:${target.model}`;
}

function parseWith<T>(schema: z.ZodType<T, unknown>, input: unknown, source: string): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new TargetValidationError(source, result.error.issues.map(toIssue));
}

function toIssue(issue: z.core.$ZodIssue): ConfigIssue {
  if (issue.code === 'unrecognized_keys') {
    return {
      field: issue.keys.map((key) => formatPath([...issue.path, key])).join(', '),
      reason: 'unknown field',
    };
  }
  return { field: formatPath(issue.path) || '(root)', reason: issue.message };
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((segment, index) => {
      if (typeof segment === 'number') return `[${segment}]`;
      const text = String(segment);
      if (/^[A-Za-z_$][\w$]*$/.test(text)) return index === 0 ? text : `.${text}`;
      return `[${JSON.stringify(text)}]`;
    })
    .join('');
}
