import path from 'node:path';
import { parseDataset } from './dataset';

/**
 * An eval step may name its dataset file (`{ "eval": { "dataset": "set.jsonl" } }`, relative to the spec).
 * The items travel in the spec, so that the rollout is whole in its history: this reads each file, checks it
 * line by line and puts it in as the step's `items`. Used by `model-rollout start --spec` (and the test of
 * the shipped examples). Throws naming the step's field.
 */
export function inlineEvalDatasets(
  input: Record<string, unknown>,
  specDir: string,
  readFile: (file: string) => string,
): Record<string, unknown> {
  if (!Array.isArray(input.steps)) return input;
  const steps = input.steps.map((step: unknown, index: number) => {
    const value = (step as { eval?: Record<string, unknown> } | null)?.eval;
    if (!value || typeof value !== 'object' || typeof value.dataset !== 'string') return step;
    const field = `steps.${index}.eval.dataset`;
    const file = path.resolve(specDir, value.dataset);
    try {
      const items = parseDataset(readFile(file), file).map(({ line: _line, ...item }) => item);
      const { dataset: _dataset, ...rest } = value;
      return { eval: { ...rest, items } };
    } catch (err) {
      throw new Error(`${field}: ${(err as Error).message}`);
    }
  });
  return { ...input, steps };
}
