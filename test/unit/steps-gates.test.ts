/** The webhook and analysis step kinds, and the spec's lifecycle webhooks placed as steps. */
import { describe, expect, it } from 'vitest';
import { InvalidSpecError, parseRolloutSpec } from '../../src/decision/config/rollout-spec';
import { describeStep } from '../../src/decision/config/steps';

const base = { route: 'r', candidate: 'openai:gpt-4o' };
const kinds = (steps: readonly object[]) =>
  steps.map((s) => {
    const [k] = Object.keys(s);
    const v = (s as Record<string, unknown>)[k];
    return k === 'webhook' ? `webhook:${(v as { type: string }).type}` : k === 'setShare' ? String(v) : k;
  });
function refusal(input: unknown): string[] {
  try {
    parseRolloutSpec(input);
  } catch (err) {
    if (err instanceof InvalidSpecError) return err.issues.map((i) => `${i.field}: ${i.reason}`);
    throw err;
  }
  throw new Error('expected a refusal');
}
const check = {
  name: 'latency',
  provider: { prometheus: { source: 'prom', query: 'avg(l{route="{{route}}",arm="{{arm}}"})' } },
  successCondition: 'canary <= stable * 1.2',
};

describe('lifecycle webhooks', () => {
  it('pre-rollout goes first; confirm-promotion before the promotion, or before every increase', () => {
    const spec = parseRolloutSpec({
      ...base,
      canary: { steps: [1000, 5000, 10_000] },
      webhooks: [
        { type: 'pre-rollout', hook: 'load-test' },
        { type: 'confirm-promotion', hook: 'release-gate' },
        { type: 'event', hook: 'audit' },
      ],
    });
    expect(kinds(spec.steps)).toEqual([
      'webhook:pre-rollout',
      '1000',
      '5000',
      'webhook:confirm-promotion',
      '10000',
      'bake',
    ]);
    expect(spec.steps.map(describeStep).filter((d) => /'/.test(d))).toEqual([
      "pre-rollout 'load-test' (a refusal rolls back)",
      "confirm-promotion 'release-gate' (a refusal holds, asked every 1m)",
    ]);
    // Only the hooks that are not steps stay in `webhooks`, so the parsed spec parses again to itself.
    expect(spec.webhooks).toEqual([{ type: 'event', hook: 'audit', timeout: 10_000, retries: 2 }]);
    expect(parseRolloutSpec(spec)).toEqual(spec);

    const each = parseRolloutSpec({
      ...base,
      steps: [{ setShare: 1000 }, { pause: { duration: '1h' } }, { setShare: 5000 }, { setShare: 10_000 }],
      webhooks: [
        { type: 'confirm-promotion', hook: 'g', at: 'each-step', onRefusal: 'rollback', interval: '30s' },
      ],
    });
    expect(kinds(each.steps)).toEqual([
      '1000',
      'pause',
      'webhook:confirm-promotion',
      '5000',
      'webhook:confirm-promotion',
      '10000',
    ]);
    expect(each.steps[2]).toEqual({
      webhook: {
        hook: 'g',
        type: 'confirm-promotion',
        onRefusal: 'rollback',
        interval: 30_000,
        timeout: 10_000,
        retries: 2,
      },
    });
    expect(parseRolloutSpec(each)).toEqual(each);
  });

  it('refuses URLs, unknown types and bad timings by field', () => {
    expect(refusal({ ...base, webhooks: [{ type: 'event', hook: 'https://hooks.example.com/x' }] })).toEqual([
      'webhooks.0.hook: a webhook configured on the worker (WEBHOOK_GATES_FILE), by name, not a URL',
    ]);
    expect(refusal({ ...base, webhooks: [{ type: 'confirm-rollout', hook: 'x' }] })).toEqual([
      "webhooks.0.type: type is 'pre-rollout', 'confirm-promotion', 'post-rollout', 'rollback' or 'event'",
    ]);
    expect(refusal({ ...base, webhooks: [{ type: 'event', hook: 'x', timeout: '10m' }] })).toEqual([
      'webhooks.0.timeout: between 1ms and 5m',
    ]);
    expect(refusal({ ...base, webhooks: [{ type: 'event', hook: 'x', at: 'each-step' }] })).toEqual([
      'webhooks.0.at: unknown field',
    ]);
  });
});

describe('the webhook and analysis steps', () => {
  it('a webhook step is a gate a promote --full stops at', () => {
    const spec = parseRolloutSpec({
      ...base,
      steps: [{ setShare: 500 }, { webhook: { hook: 'ci' } }, { setShare: 10_000 }],
    });
    expect(spec.steps[1]).toEqual({
      webhook: { hook: 'ci', type: 'gate', onRefusal: 'hold', interval: 60_000, timeout: 10_000, retries: 2 },
    });
    expect(describeStep(spec.steps[1])).toBe("webhook 'ci' (a refusal holds, asked every 1m)");
  });

  it('an analysis step that compares the arms goes where both serve', () => {
    const ok = parseRolloutSpec({
      ...base,
      steps: [{ setShare: 1000 }, { analysis: { checks: [check], count: 3 } }, { setShare: 10_000 }],
    });
    expect(describeStep(ok.steps[1])).toBe('analysis latency (3x)');
    expect(refusal({ ...base, steps: [{ analysis: { checks: [check] } }, { setShare: 10_000 }] })).toEqual([
      "steps.0: check 'latency' compares the arms ({{arm}}): place it after a setShare below 10000, where both serve",
    ]);
    expect(
      refusal({
        ...base,
        steps: [{ setShare: 1000 }, { analysis: { checks: [check, check] } }, { setShare: 10_000 }],
      }),
    ).toEqual(["steps.1.analysis.checks.1.name: check 'latency' is named twice"]);
  });

  it("the spec's analysis runs through canary and bake by default", () => {
    const spec = parseRolloutSpec({ ...base, analysis: { checks: [check] } });
    expect(spec.analysis).toMatchObject({ during: ['canary', 'bake'], holdAfter: 600_000 });
    expect(spec.analysis!.checks[0]).toMatchObject({
      interval: 60_000,
      failureLimit: 0,
      minSample: 0,
      timeout: 10_000,
    });
    expect(parseRolloutSpec(spec)).toEqual(spec);
  });
});
