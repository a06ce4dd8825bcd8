import type { RolloutSpec } from '../src/decision/config/rollout-spec';
import { defaultTriggers, legacyGreaterThan, type TriggerSpec } from '../src/decision/policy';

/** The trigger list of a rollout: the seed's four with the spec's thresholds, minimums and windows. */
export function triggerSpecsOf(spec: Pick<RolloutSpec, 'triggers'>): TriggerSpec[] {
  const t = spec.triggers;
  const thresholds = Object.fromEntries(Object.entries(t.thresholds).filter(([, v]) => v !== undefined));
  let triggers = defaultTriggers({ thresholds, minRequests: t.minRequests, minScores: t.minScores });
  if (t.windowMinutes) {
    // The seed's windows are 15 min (errors, latency) and 60 min (quality, cost); a demo shortens both.
    const { short, long } = t.windowMinutes;
    triggers = triggers.map((x) => ({ ...x, windowMinutes: x.windowMinutes <= 15 ? short : long }));
  }
  return t.mode === 'legacy-greater-than' ? legacyGreaterThan(triggers) : triggers;
}
