import { compiledRegex, compiledSchema, matchesRegex, matchesSchema } from '../checks';
import { defineEvaluator, InvalidEvaluatorError } from './evaluator';

/** Length, regex (RE2) and JSON Schema checks: 1 when every one passes, else 0. */
export const checks = defineEvaluator('checks', (config) => {
  // Compiled once per distinct text for the worker's life (see ../checks.ts), not once per batch.
  const build = <T>(field: string, make: () => T): T => {
    try {
      return make();
    } catch (err) {
      throw new InvalidEvaluatorError(field, (err as Error).message.slice(0, 300));
    }
  };
  const { jsonSchema, regex: source } = config;
  const validate = jsonSchema ? build('jsonSchema', () => compiledSchema(jsonSchema)) : undefined;
  const regex = source !== undefined ? build('regex', () => compiledRegex(source)) : undefined;
  return {
    name: 'checks',
    weight: config.weight,
    async evaluate(item) {
      const text = item.answer.trim();
      const pass =
        (config.minLength === undefined || text.length >= config.minLength) &&
        (config.maxLength === undefined || text.length <= config.maxLength) &&
        (regex === undefined || matchesRegex(regex, text)) &&
        (validate === undefined || matchesSchema(validate, text));
      return { score: pass ? 1 : 0 };
    },
  };
});
