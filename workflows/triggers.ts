import type { RolloutSpec } from '../src/decision/config/rollout-spec';
import { defaultTriggers, type TriggerSpec } from '../src/decision/policy';

/** The trigger list of a rollout: the seed's four with the spec's thresholds, minimums and windows. */
export function triggerSpecsOf(spec: Pick<RolloutSpec, 'triggers'>): TriggerSpec[] {
  const t = spec.triggers;
  const thresholds = Object.fromEntries(Object.entries(t.thresholds).filter(([, v]) => v !== undefined));
  const triggers = defaultTriggers({ thresholds, minRequests: t.minRequests, minScores: t.minScores });
  if (!t.windowMinutes) return triggers;
  // The seed's windows are 15 min (errors, latency) and 60 min (quality, cost); a demo shortens both.
  const { short, long } = t.windowMinutes;
  return triggers.map((x) => ({ ...x, windowMinutes: x.windowMinutes <= 15 ? short : long }));
}
