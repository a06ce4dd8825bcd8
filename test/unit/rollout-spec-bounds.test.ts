import { describe, expect, it } from 'vitest';
import { InvalidSpecError, parseRolloutSpec } from '../../src/decision/config/rollout-spec';
import {
  DEFAULT_RATIO_CONFIG,
  DEFAULT_SEQUENTIAL_CONFIG,
  resolvePolicyConfig,
  resolveSequentialConfig,
  SEQUENTIAL_DEFAULTS_V1,
} from '../../src/decision/policy';

const base = { route: 'support-bot', candidate: 'openai:gpt-4o' };

function issues(input: unknown, options = {}): Array<{ field: string; reason: string }> {
  try {
    parseRolloutSpec(input, options);
  } catch (err) {
    if (err instanceof InvalidSpecError) return err.issues;
    throw err;
  }
  throw new Error('expected the spec to be refused');
}

describe('bounded rollouts in the spec', () => {
  it('has progress deadlines and an approval timeout that ends by default', () => {
    const spec = parseRolloutSpec(base);
    expect(spec.progressDeadline).toEqual({ step: 24 * 3_600_000, rollout: 7 * 86_400_000, action: 'hold' });
    expect(spec.approval.onTimeout).toBe('rollback');
  });

  it('reads deadlines as durations, with their action', () => {
    const spec = parseRolloutSpec({
      ...base,
      progressDeadline: { step: '2h', rollout: '3d', action: 'rollback' },
      approval: { required: true, timeout: '4h', onTimeout: 'approve' },
    });
    expect(spec.progressDeadline).toEqual({ step: 7_200_000, rollout: 259_200_000, action: 'rollback' });
    expect(spec.approval).toMatchObject({ timeout: 14_400_000, onTimeout: 'approve' });
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

  it("refuses an approval that would wait forever; rollouts from before keep 'hold' (and its default)", () => {
    const [refused] = issues({ ...base, approval: { required: true, onTimeout: 'hold' } });
    expect(refused.field).toBe('approval.onTimeout');
    expect(refused.reason).toMatch(/^'hold' waited for an approval forever; give 'rollback' or 'approve'/);
    const legacy = { legacyApprovalHold: true };
    expect(parseRolloutSpec({ ...base, approval: { onTimeout: 'hold' } }, legacy).approval.onTimeout).toBe(
      'hold',
    );
    expect(parseRolloutSpec(base, legacy).approval.onTimeout).toBe('hold');
    expect(
      parseRolloutSpec({ ...base, approval: { onTimeout: 'rollback' } }, legacy).approval.onTimeout,
    ).toBe('rollback');
  });
});

describe('the policy config resolved when a rollout starts', () => {
  const overrides = {
    policy: 'sequential' as const,
    sequential: { alpha: 0.02, finalGate: { toleranceRel: 0.05 } },
  };

  it('spells out every setting on the current defaults', () => {
    const resolved = resolvePolicyConfig(overrides);
    expect(resolved).toEqual({
      policy: 'sequential',
      sequential: {
        ...DEFAULT_SEQUENTIAL_CONFIG,
        alpha: 0.02,
        finalGate: { ...DEFAULT_SEQUENTIAL_CONFIG.finalGate, toleranceRel: 0.05 },
      },
    });
    expect(resolvePolicyConfig({ policy: 'ratio', ratio: { window: 'step' } })).toEqual({
      policy: 'ratio',
      ratio: { ...DEFAULT_RATIO_CONFIG, window: 'step' },
    });
    expect(resolvePolicyConfig()).toEqual({ policy: 'sequential', sequential: DEFAULT_SEQUENTIAL_CONFIG });
  });

  it('is what the rollout decides on whatever the defaults become later', () => {
    const resolved = resolvePolicyConfig(overrides);
    if (resolved.policy !== 'sequential') throw new Error('sequential expected');
    // Merged onto other defaults (here the v1 ones, which differ in promotion and final gate) it stays itself.
    expect(resolveSequentialConfig(resolved.sequential, SEQUENTIAL_DEFAULTS_V1)).toEqual(resolved.sequential);
    expect(resolvePolicyConfig(resolved)).toEqual(resolved);
  });

  it('is what the clients put in the input (parseRolloutSpec resolvePolicy)', () => {
    const spec = parseRolloutSpec({ ...base, policy: overrides }, { resolvePolicy: true });
    expect(spec.policy).toEqual(resolvePolicyConfig(overrides));
    // The workflow parses that input again and gets the same full config.
    expect(parseRolloutSpec(spec).policy).toEqual(spec.policy);
    // Without the option the spec keeps what the person wrote.
    expect(parseRolloutSpec({ ...base, policy: overrides }).policy).toEqual(overrides);
  });

  it('refuses an unusable config when it is resolved', () => {
    expect(() => resolvePolicyConfig({ sequential: { alpha: 0.7 } })).toThrow(/alpha must be in \(0, 0\.5\)/);
  });
});
