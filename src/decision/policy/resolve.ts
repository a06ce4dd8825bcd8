/**
 * The policy a rollout decides on, resolved once: every setting of its policy spelled out on the current
 * defaults and validated. The clients (CLI, scripts) resolve it into the rollout's input when they parse
 * the spec, and the workflow resolves it once more when it starts, in a local activity whose result is
 * recorded in its history and carried through continue-as-new: a later change of the code's defaults does
 * not change a running rollout's decisions. `decide()` and `estimate()` accept nothing else.
 */
import { resolveRatioConfig, resolveSequentialConfig, type PolicyConfig, type RatioConfig } from './config';
import type { SequentialConfig } from './config';

export type ResolvedPolicy =
  { policy: 'sequential'; sequential: SequentialConfig } | { policy: 'ratio'; ratio: RatioConfig };

/**
 * `config` (partial overrides, or an already resolved policy, which comes back equal) resolved in full;
 * throws an Error saying what is wrong with an unusable one.
 */
export function resolvePolicy(config: PolicyConfig = {}): ResolvedPolicy {
  return (config.policy ?? 'sequential') === 'ratio'
    ? { policy: 'ratio', ratio: resolveRatioConfig(config.ratio) }
    : { policy: 'sequential', sequential: resolveSequentialConfig(config.sequential ?? {}) };
}
