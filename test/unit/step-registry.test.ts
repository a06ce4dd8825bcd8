/**
 * The step kinds: one schema file and one executor file each, in two registries. Every kind the spec
 * accepts has an executor, each kind's description and place in a list are checked, and the workflow's
 * files import no circle (the story imports the steps, the steps import the run, the run imports no step).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidSpecError, parseRolloutSpec } from '../../src/decision/config/rollout-spec';
import { describeStep, STEP_KINDS, sharesOf, strategyOf } from '../../src/decision/config/steps';
import { STEP_EXECUTORS } from '../../workflows/steps';

const ROOT = path.resolve(__dirname, '..', '..');
const base = { route: 'r', candidate: 'openai:gpt-4o' };

function refusal(input: unknown): string[] {
  try {
    parseRolloutSpec(input);
  } catch (err) {
    if (err instanceof InvalidSpecError) return err.issues.map((i) => `${i.field}: ${i.reason}`);
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('the step registries', () => {
  it('every kind of the spec has its executor, and no executor lacks a kind', () => {
    expect([...STEP_EXECUTORS.keys()].sort()).toEqual([...STEP_KINDS.keys()].sort());
  });

  it("the default lists are today's shapes, and an explicit list replaces them", () => {
    const canary = parseRolloutSpec(base);
    expect(canary.strategy).toBe('canary');
    expect(sharesOf(canary.steps)).toEqual([500, 1000, 2000, 4000, 8000, 10000]);
    expect(canary.steps.at(-1)).toEqual({ bake: { duration: 30 * 60_000 } });
    const bg = parseRolloutSpec({ ...base, strategy: 'blue-green', approval: { required: true } });
    expect(bg.steps.map((s) => Object.keys(s)[0])).toEqual(['approve', 'setShare', 'bake']);
    const shadowOnly = parseRolloutSpec({ ...base, strategy: 'shadow-only', shadow: { rate: 0.1 } });
    expect(shadowOnly.steps).toEqual([
      { shadow: { rate: 0.1, minComparisons: 50, maxDuration: 30 * 60_000, require: 'none' } },
    ]);
    const custom = parseRolloutSpec({
      ...base,
      steps: [{ setShare: '1%' }, { pause: { duration: '2h' } }, { setShare: 10000 }],
    });
    expect(custom.strategy).toBe('canary');
    expect(custom.steps.map(describeStep)).toEqual(['canary share 1%', 'pause 2h', 'promote to 100%']);
    // What the clients send the workflow parses again to itself.
    expect(parseRolloutSpec(custom)).toEqual(custom);
  });

  it('a list is refused with the step and the reason named', () => {
    expect(
      refusal({ ...base, steps: [{ setShare: 5000 }, { setShare: 2000 }, { setShare: 10000 }] }),
    ).toEqual(['steps.1: shares must increase (5000 before 2000)']);
    expect(refusal({ ...base, steps: [{ setShare: 5000 }] })).toEqual([
      'steps.0: the last setShare must be 10000 (the promotion), or the candidate never takes over',
      'steps: the list must promote the candidate (a setShare of 10000) or end with a report (a shadow step)',
    ]);
    expect(refusal({ ...base, steps: [{ bake: {} }, { setShare: 10000 }] })).toEqual([
      'steps.0: a bake step comes after the promotion (a setShare of 10000)',
    ]);
    expect(refusal({ ...base, steps: [{ setShare: 500 }, { shadow: {} }, { setShare: 10000 }] })).toEqual([
      'steps.1: a shadow step comes before any setShare (it compares against a stable model serving all traffic)',
    ]);
    expect(refusal({ ...base, steps: [{ wait: '1h' }] })[0]).toMatch(
      /^steps\.0: unknown step kind 'wait' \(known: /,
    );
    expect(
      refusal({ ...base, steps: [{ pause: { duration: '1h', until: 'x' } }, { setShare: 10000 }] }),
    ).toEqual(['steps.0.pause: unknown field(s) until']);
    expect(refusal({ ...base, steps: [{ setShare: '120%' }] })[0]).toMatch(
      /^steps\.0\.setShare: a share is at most 10000/,
    );
    // The default list's fields do not mix with a list.
    expect(refusal({ ...base, steps: [{ setShare: 10000 }], bake: { duration: '1h' } })).toEqual([
      "bake: with 'steps' the list says everything: put the bake settings in its steps",
    ]);
    expect(refusal({ ...base, strategy: 'canary', steps: [{ setShare: 10000 }] })).toEqual([
      'strategy: the steps make a blue-green rollout, not canary',
    ]);
  });

  it('the strategy label follows the list', () => {
    expect(strategyOf([{ shadow: {} }])).toBe('shadow-only');
    expect(strategyOf([{ approve: {} }, { setShare: 10000 }])).toBe('blue-green');
    expect(strategyOf([{ setShare: 10 }, { setShare: 10000 }])).toBe('canary');
  });
});

describe('the workflow files import no circle', () => {
  const IMPORT_RE = /^\s*(?:import|export)\s+(?:type\s+)?(?:[^'"]*?\s+from\s+)?['"](\.[^'"]+)['"]/gm;
  function graph(entry: string): Map<string, string[]> {
    const edges = new Map<string, string[]>();
    const visit = (file: string) => {
      if (edges.has(file) || !file.startsWith(path.join(ROOT, 'workflows'))) return;
      const out: string[] = [];
      edges.set(file, out);
      for (const [, spec] of fs.readFileSync(file, 'utf8').matchAll(IMPORT_RE)) {
        const base = path.resolve(path.dirname(file), spec);
        const resolved = [`${base}.ts`, path.join(base, 'index.ts')].find((f) => fs.existsSync(f));
        if (resolved) {
          out.push(resolved);
          visit(resolved);
        }
      }
    };
    visit(entry);
    return edges;
  }

  it('none, counting type-only imports, from workflows/index.ts', () => {
    const edges = graph(path.join(ROOT, 'workflows', 'index.ts'));
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const walk = (file: string, trail: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push(
          [...trail.slice(trail.indexOf(file)), file].map((f) => path.relative(ROOT, f)).join(' -> '),
        );
        return;
      }
      state.set(file, 'open');
      for (const next of edges.get(file) ?? []) walk(next, [...trail, file]);
      state.set(file, 'done');
    };
    for (const file of edges.keys()) walk(file, []);
    expect(edges.size).toBeGreaterThan(10);
    expect(cycles).toEqual([]);
  });

  it('the run imports no step', () => {
    const run = fs.readFileSync(path.join(ROOT, 'workflows', 'run', 'run.ts'), 'utf8');
    expect(run).not.toMatch(/from '\.\.\/steps|from '\.\.\/rollout'/);
  });
});
