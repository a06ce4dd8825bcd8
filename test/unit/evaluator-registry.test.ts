import { describe, expect, it } from 'vitest';
import { EVALUATOR_KINDS, evaluatorSchema } from '../../src/decision/config/evaluators';
import { FACTORIES } from '../../src/decision/scoring/evaluators';

/** The evaluator registry: every kind of the spec has a factory, and the spec schema is the kinds' union. */
describe('evaluator registry', () => {
  it('has a factory for every kind the spec takes, and no factory without a kind', () => {
    const kinds = EVALUATOR_KINDS.map((k) => k.kind);
    expect(new Set(kinds).size).toBe(kinds.length);
    expect(Object.keys(FACTORIES).sort()).toEqual([...kinds].sort());
    for (const k of kinds) expect(FACTORIES[k as keyof typeof FACTORIES].kind).toBe(k);
  });

  it("parses each kind's entry through the union, and names an unknown kind", () => {
    const entries = [
      { kind: 'judge', target: 'openai:gpt-4o-mini' },
      { kind: 'http', name: 'evals', scale: { min: 0, max: 1 } },
      { kind: 'checks', maxLength: 2000 },
      { kind: 'feedback' },
      { kind: 'reference' },
    ];
    expect(entries.map((e) => evaluatorSchema.parse(e).kind)).toEqual(EVALUATOR_KINDS.map((k) => k.kind));
    const unknown = evaluatorSchema.safeParse({ kind: 'toxicity' });
    expect(unknown.success).toBe(false);
    expect(JSON.stringify(unknown.error?.issues)).toMatch(/kind/);
  });
});
