/**
 * Named endpoints configured on the worker, from `<NAME>_FILE` (a JSON file) or `<NAME>` (the same JSON):
 * the webhook gates (./webhooks.ts) and the metric sources (./sources). As with the alert channels, a
 * spec, a workflow history or an activity input carries only the name; URLs, secrets and tokens stay in
 * this process, and errors name the source and the field, never a value.
 */
import fs from 'node:fs';
import type { z } from 'zod';

export const ENDPOINT_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export class NamedConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NamedConfigError';
  }
}

export function loadNamedConfig<T>(
  /** The variables, e.g. { file: 'WEBHOOK_GATES_FILE', json: 'WEBHOOK_GATES' } (literal: deployment tests find them). */
  variables: { file: string; json: string },
  schema: z.ZodType<Record<string, T>, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): ReadonlyMap<string, T> {
  const file = env[variables.file];
  let source = variables.json;
  let text = env[variables.json];
  if (file) {
    source = `${variables.file} (${file})`;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new NamedConfigError(`${source}: cannot read it: ${(err as NodeJS.ErrnoException).code}`);
    }
  }
  if (text === undefined || text.trim() === '') return new Map();
  return parseNamedConfig(text, schema, source);
}

export function parseNamedConfig<T>(
  text: string,
  schema: z.ZodType<Record<string, T>, unknown>,
  source: string,
): ReadonlyMap<string, T> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new NamedConfigError(`${source}: not valid JSON`);
  }
  if (json && typeof json === 'object' && !Array.isArray(json))
    for (const key of Object.keys(json))
      if (!ENDPOINT_NAME.test(key))
        throw new NamedConfigError(
          `${source}: ${key}: a name is lower-case letters, digits, ".", "_" or "-"`,
        );
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.map(String).join('.') || '(root)';
    throw new NamedConfigError(`${source}: ${field}: ${issue.message}`);
  }
  return new Map(Object.entries(parsed.data));
}

/** fetch's own messages and causes name the host: only the kind of failure is kept. */
export function failureKind(err: unknown): string {
  const e = err as Error & { cause?: { code?: string } };
  return e.name === 'TimeoutError' ? 'timeout' : (e.cause?.code ?? e.name);
}
