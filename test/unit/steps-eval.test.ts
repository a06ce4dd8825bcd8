import { describe, expect, it } from 'vitest';
import { parseRolloutSpec } from '../../src/decision/config/rollout-spec';
import { describeStep } from '../../src/decision/config/steps';

const item = (i: number) => ({ id: `q${i}`, prompt: `Question ${i}?`, reference: `${i}` });
const spec = (evalValue: unknown) => ({
  route: 'support-bot',
  candidate: 'openai:gpt-4o',
  steps: [{ eval: evalValue }, { setShare: 500 }, { setShare: 10000 }],
});
const problems = (input: unknown): string => {
  try {
    parseRolloutSpec(input);
    return '';
  } catch (err) {
    return (err as Error).message;
  }
};

describe('the eval step in a spec', () => {
  it('takes items with the defaults filled in, and reads as a step', () => {
    const parsed = parseRolloutSpec(spec({ items: [item(1), item(2)] }));
    expect(parsed.steps![0]).toEqual({
      eval: { items: [item(1), item(2)], margin: 0.05, confidence: 0.95, concurrency: 8, timeout: 60_000 },
    });
    expect(describeStep(parsed.steps![0])).toBe('eval 2 items (margin 5 points)');
  });

  it('refuses what it cannot run, naming the field', () => {
    expect(problems(spec({ items: [] }))).toContain('steps.0.eval.items');
    expect(problems(spec({ dataset: 'set.jsonl' }))).toMatch(/steps\.0\.eval.*dataset/);
    expect(problems(spec({ items: Array.from({ length: 501 }, (_, i) => item(i)) }))).toContain(
      'at most 500 items',
    );
    expect(problems(spec({ items: [item(1)], margin: 2 }))).toContain('steps.0.eval.margin');
    expect(problems(spec({ items: [item(1)], confidence: 0.42 }))).toContain('steps.0.eval.confidence');
    expect(problems(spec({ items: [{ id: 'x', prompt: 'p', assert: [{ regex: '(?=a)' }] }] }))).toContain(
      'regex needs a backtracking engine',
    );
    expect(problems(spec({ items: [{ prompt: 'p', reference: 'r' }] }))).toContain('steps.0.eval.items.0.id');
  });
});
