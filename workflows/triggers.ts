import type { RolloutSpec } from '../src/decision/config/rollout-spec';
import { defaultTriggers, type TriggerSpec } from '../src/decision/policy';

/**
 * The trigger list of a rollout: one per metric of the registry (src/decision/metrics) that has a threshold,
 * the spec's or the metric's default, each over its metric's window ('short' or 'long': 15 and 60 minutes,
 * or the spec's `windowMinutes`, which a demo shortens).
 */
export function triggerSpecsOf(spec: Pick<RolloutSpec, 'triggers'>): TriggerSpec[] {
  const t = spec.triggers;
  const thresholds = Object.fromEntries(Object.entries(t.thresholds).filter(([, v]) => v !== undefined));
  return defaultTriggers({
    thresholds,
    minRequests: t.minRequests,
    minScores: t.minScores,
    windowMinutes: t.windowMinutes,
  });
}
