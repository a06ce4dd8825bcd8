import fs from 'node:fs';
import { z } from 'zod';

/**
 * What a simulated model does: how fast it answers, how often it fails and how, how often it is right.
 * A scenario is a default behaviour plus per-model overrides, loadable from a JSON file so that a demo
 * or a test can script "gpt-4o gets flaky at 20%" without code.
 */

export type ErrorKind =
  | 'rate_limit'
  | 'server_error'
  | 'overloaded'
  | 'timeout'
  | 'malformed'
  | 'drop_mid_stream'
  | 'bad_request'
  /** A 400 for a parameter the model does not take, as OpenAI answers reasoning models sent `temperature`. */
  | 'unsupported_parameter'
  | 'auth';

export const ERROR_KINDS: readonly ErrorKind[] = [
  'rate_limit',
  'server_error',
  'overloaded',
  'timeout',
  'malformed',
  'drop_mid_stream',
  'bad_request',
  'unsupported_parameter',
  'auth',
];

export interface ModelBehaviour {
  /** Time to first byte, lognormal-ish; default `{ median: 5, p99: 20 }`. */
  latencyMs?: { median: number; p99?: number };
  /** Probability (0..1) that a request fails; default 0. */
  errorRate?: number;
  /** Relative weights of the ways a request fails; default `{ server_error: 1 }`. */
  errorKinds?: Partial<Record<ErrorKind, number>>;
  /** Probability (0..1) of answering a known question correctly; default 0.9. */
  accuracy?: number;
  /** Approximate answer length in tokens (padded with a plausible explanation); default 40. */
  outputTokens?: number;
  /** Delay between SSE chunks; default 0. */
  streamChunkDelayMs?: number;
  /** `retry-after` sent with rate_limit errors; default 1. */
  retryAfterSeconds?: number;
  /** The first N requests to the model fail (with `errorKinds`), whatever `errorRate` says; default 0. */
  failFirst?: number;
  /** Prompts longer than this many tokens are refused as over the context window; default none. */
  contextWindowTokens?: number;
  /** A stream goes silent after this many deltas (held open until the client gives up); default never. */
  streamStallAfterChunks?: number;
}

export interface Scenario {
  /** Applies to every model, and is what unknown model names get. */
  default?: ModelBehaviour;
  /** Per-model overrides, layered over `default`. */
  models?: Record<string, ModelBehaviour>;
  /** Makes every answer, error and latency reproducible. */
  seed?: number;
}

const probability = z.number().min(0).max(1);
const milliseconds = z.number().min(0).max(120_000);

const latencySchema = z
  .strictObject({ median: milliseconds, p99: milliseconds.optional() })
  .refine((latency) => latency.p99 === undefined || latency.p99 >= latency.median, {
    message: 'p99 must be at least the median',
    path: ['p99'],
  });

const errorKindsSchema = z
  .strictObject(
    Object.fromEntries(ERROR_KINDS.map((kind) => [kind, z.number().min(0).optional()])) as Record<
      ErrorKind,
      z.ZodOptional<z.ZodNumber>
    >,
  )
  .refine((weights) => Object.values(weights).some((weight) => (weight ?? 0) > 0), {
    message: 'at least one weight must be positive',
  });

// Strict objects everywhere: a typo such as `errorrate` must fail loudly, not silently do nothing.
export const modelBehaviourSchema: z.ZodType<ModelBehaviour> = z.strictObject({
  latencyMs: latencySchema.optional(),
  errorRate: probability.optional(),
  errorKinds: errorKindsSchema.optional(),
  accuracy: probability.optional(),
  outputTokens: z.number().int().min(1).max(100_000).optional(),
  streamChunkDelayMs: milliseconds.optional(),
  retryAfterSeconds: z.number().min(0).max(3600).optional(),
  failFirst: z.number().int().min(0).optional(),
  contextWindowTokens: z.number().int().min(1).optional(),
  streamStallAfterChunks: z.number().int().min(0).optional(),
});

export const scenarioSchema: z.ZodType<Scenario> = z.strictObject({
  default: modelBehaviourSchema.optional(),
  models: z.record(z.string().min(1), modelBehaviourSchema).optional(),
  seed: z.number().int().optional(),
});

/** One reason an input was refused, with the field it concerns (`models["gpt-4.1"].accuracy`). */
export interface ValidationIssue {
  field: string;
  reason: string;
}

export class ScenarioValidationError extends Error {
  constructor(
    readonly source: string,
    readonly issues: ValidationIssue[],
  ) {
    super(`${source}: ${issues.map((issue) => `${issue.field}: ${issue.reason}`).join('; ')}`);
    this.name = 'ScenarioValidationError';
  }
}

export function parseScenario(input: unknown, source = 'scenario'): Scenario {
  return parseWith(scenarioSchema, input, source);
}

export function parseBehaviour(input: unknown, source = 'behaviour'): ModelBehaviour {
  return parseWith(modelBehaviourSchema, input, source);
}

/** Reads and validates a JSON scenario file; every error names the file and the offending field. */
export function loadScenarioFile(path: string): Scenario {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (error) {
    throw new ScenarioValidationError(path, [{ field: '(file)', reason: (error as Error).message }]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ScenarioValidationError(path, [
      { field: '(file)', reason: `invalid JSON: ${(error as Error).message}` },
    ]);
  }
  return parseScenario(json, path);
}

function parseWith<T>(schema: z.ZodType<T>, input: unknown, source: string): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new ScenarioValidationError(source, result.error.issues.map(toValidationIssue));
}

function toValidationIssue(issue: z.core.$ZodIssue): ValidationIssue {
  const field = formatPath(issue.path);
  // Unknown keys are reported on their parent object; naming the key itself is what the reader needs.
  if (issue.code === 'unrecognized_keys') {
    return {
      field: issue.keys.map((key) => formatPath([...issue.path, key])).join(', '),
      reason: 'unknown field',
    };
  }
  return { field: field || '(root)', reason: issue.message };
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((segment, index) => {
      const text = String(segment);
      if (/^[A-Za-z_$][\w$]*$/.test(text)) return index === 0 ? text : `.${text}`;
      return `[${JSON.stringify(text)}]`;
    })
    .join('');
}
