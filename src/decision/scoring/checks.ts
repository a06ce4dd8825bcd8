import { Ajv, type ValidateFunction } from 'ajv';
import { RE2JS } from 're2js';
import { linearRegexProblem } from '../config/evaluators/checks';

/**
 * The compiled forms of the `checks` evaluator's regex and JSON Schema, cached by their text.
 *
 * A scoring batch builds its evaluators afresh every few minutes, for as long as a rollout runs. Compiling a
 * schema into one shared Ajv on every batch grew its schema store without end, and a schema with `$id` threw
 * "already exists" from the second batch on, failing every later batch. Here each distinct schema text is
 * compiled once, into an Ajv of its own (so two rollouts whose schemas share an `$id` never collide), and the
 * cache is bounded: a worker that sees a stream of distinct schemas drops the oldest.
 *
 * Regexes run on model output inside the worker's event loop, where a backtracking engine can hang the
 * worker on one answer (`(a+)+$` against "aaaa…b"). They run on RE2JS, a linear-time engine: pure
 * JavaScript (no native build, no download at install, and it also loads in the workflow bundle where the
 * spec is validated). Patterns that need backtracking (backreferences, lookaround) are refused at `start`.
 */
const MAX_CACHED = 64;

function cached<T>(cache: Map<string, T>, key: string, make: () => T): T {
  const hit = cache.get(key);
  if (hit !== undefined) {
    // Re-inserted so the map's order is least-recently-used first.
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const value = make();
  cache.set(key, value);
  if (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value as string);
  return value;
}

const schemas = new Map<string, ValidateFunction>();
const regexes = new Map<string, RE2JS>();

/** Throws with a short reason when the schema does not compile (the caller names the field). */
export function compiledSchema(schema: Record<string, unknown>): ValidateFunction {
  return cached(schemas, JSON.stringify(schema), () =>
    new Ajv({ allErrors: false, strict: false }).compile(schema),
  );
}

/** Why a JSON Schema does not compile (short, for a spec error), or undefined. */
export function schemaProblem(schema: Record<string, unknown>): string | undefined {
  try {
    compiledSchema(schema);
    return undefined;
  } catch (err) {
    return `jsonSchema does not compile: ${(err as Error).message.slice(0, 200)}`;
  }
}

/** Throws with the reason when RE2 cannot take the pattern (the spec schema refuses those already). */
export function compiledRegex(source: string): RE2JS {
  return cached(regexes, source, () => {
    const problem = linearRegexProblem(source);
    if (problem) throw new Error(problem);
    return RE2JS.compile(source);
  });
}

/** How many compiled schemas are held (for the test that a long rollout does not grow it). */
export function cachedSchemaCount(): number {
  return schemas.size;
}

export function matchesRegex(regex: RE2JS, text: string): boolean {
  return regex.matcher(text).find();
}

export function matchesSchema(validate: ValidateFunction, text: string): boolean {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return false;
  }
  return validate(value) === true;
}
