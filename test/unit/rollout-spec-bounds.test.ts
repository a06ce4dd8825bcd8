import { describe, expect, it } from 'vitest';
import { InvalidSpecError, parseRolloutSpec } from '../../src/decision/config/rollout-spec';
import { DEFAULT_RATIO_CONFIG, DEFAULT_SEQUENTIAL_CONFIG, resolvePolicy } from '../../src/decision/policy';

const base = { route: 'support-bot', candidate: 'openai:gpt-4o' };

function issues(input: unknown): Array<{ field: string; reason: string }> {
  try {
    parseRolloutSpec(input);
  } catch (err) {
    if (err instanceof InvalidSpecError) return err.issues;
    throw err;
  }
  throw new Error('expected the spec to be refused');
}

describe('bounded rollouts in the spec', () => {
  it('has progress deadlines, and an approval timeout that ends, by default', () => {
    const spec = parseRolloutSpec({ ...base, approval: { required: true } });
    expect(spec.progressDeadline).toEqual({ step: 24 * 3_600_000, rollout: 7 * 86_400_000, action: 'hold' });
    expect(spec.steps).toContainEqual({ approve: { timeout: 24 * 3_600_000, onTimeout: 'rollback' } });
  });

  it('reads deadlines as durations, with their action', () => {
    const spec = parseRolloutSpec({
      ...base,
      progressDeadline: { step: '2h', rollout: '3d', action: 'rollback' },
      approval: { required: true, timeout: '4h', onTimeout: 'approve' },
    });
    expect(spec.progressDeadline).toEqual({ step: 7_200_000, rollout: 259_200_000, action: 'rollback' });
    expect(spec.steps).toContainEqual({ approve: { timeout: 14_400_000, onTimeout: 'approve' } });
    // A parsed spec parses again to itself (the workflow parses its input again).
    expect(parseRolloutSpec(spec)).toEqual(spec);
  });

  it('refuses bad deadlines naming the field and the reason', () => {
    expect(issues({ ...base, progressDeadline: { step: 0 } })).toEqual([
      { field: 'progressDeadline.step', reason: 'must be longer than 0' },
    ]);
    expect(issues({ ...base, progressDeadline: { rollout: 'soon' } })).toEqual([
      {
        field: 'progressDeadline.rollout',
        reason: "'soon' is not a duration (examples: 30s, 5m, 1h30m, 2d)",
      },
    ]);
    const [action] = issues({ ...base, progressDeadline: { action: 'wait' } });
    expect(action.field).toBe('progressDeadline.action');
    expect(action.reason).toMatch(/hold.*rollback/);
    expect(issues({ ...base, progressDeadline: { steps: '1h' } })).toEqual([
      { field: 'progressDeadline.steps', reason: 'unknown field' },
    ]);
  });

  it('refuses an approval that would wait forever, naming the field', () => {
    const [refused] = issues({ ...base, approval: { required: true, onTimeout: 'hold' } });
    expect(refused.field).toBe('approval.onTimeout');
    expect(refused.reason).toMatch(/'rollback' or 'approve'/);
    const [inList] = issues({ ...base, steps: [{ approve: { onTimeout: 'hold' } }, { setShare: 10000 }] });
    expect(inList.field).toBe('steps.0.approve.onTimeout');
  });
});

describe('what a spec may not carry', () => {
  it("refuses the seed's direction-less trigger rule, naming the field", () => {
    expect(issues({ ...base, triggers: { mode: 'legacy-greater-than' } })).toEqual([
      {
        field: 'triggers.mode',
        reason: "only 'directional': the seed's 'legacy-greater-than' rule rolls back on good quality",
      },
    ]);
    expect(parseRolloutSpec({ ...base, triggers: { mode: 'directional' } }).triggers.mode).toBe(
      'directional',
    );
  });

  it('refuses a webhook URL, naming the field and never echoing the URL', () => {
    const [refused] = issues({ ...base, alerts: { webhookUrl: 'https://hooks.example/T0SECRET' } });
    expect(refused.field).toBe('alerts.webhookUrl');
    expect(refused.reason).toMatch(/a webhook URL is a secret/);
    expect(JSON.stringify(refused)).not.toContain('T0SECRET');
  });
});

describe('the policy resolved when a rollout starts', () => {
  const overrides = {
    policy: 'sequential' as const,
    sequential: { alpha: 0.02, finalGate: { toleranceRel: 0.05 } },
  };

  it('comes out of the parse resolved in full on the current defaults: what the clients put in the input', () => {
    const spec = parseRolloutSpec({ ...base, policy: overrides });
    expect(spec.policy).toEqual({
      policy: 'sequential',
      sequential: {
        ...DEFAULT_SEQUENTIAL_CONFIG,
        alpha: 0.02,
        finalGate: { ...DEFAULT_SEQUENTIAL_CONFIG.finalGate, toleranceRel: 0.05 },
      },
    });
    expect(spec.policy).toEqual(resolvePolicy(overrides));
    expect(
      parseRolloutSpec({ ...base, policy: { policy: 'ratio', ratio: { window: 'step' } } }).policy,
    ).toEqual({ policy: 'ratio', ratio: { ...DEFAULT_RATIO_CONFIG, window: 'step' } });
    expect(parseRolloutSpec(base).policy).toEqual({
      policy: 'sequential',
      sequential: DEFAULT_SEQUENTIAL_CONFIG,
    });
    // The workflow parses that input again (and resolves it once, recorded): the same full config.
    expect(parseRolloutSpec(spec).policy).toEqual(spec.policy);
    expect(resolvePolicy(spec.policy)).toEqual(spec.policy);
  });

  it('refuses an unusable config, naming the field', () => {
    const [refused] = issues({ ...base, policy: { sequential: { alpha: 0.7 } } });
    expect(refused.field).toBe('policy.sequential');
    expect(refused.reason).toMatch(/alpha must be in \(0, 0\.5\)/);
  });
});
