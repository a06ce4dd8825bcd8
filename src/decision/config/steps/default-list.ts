/**
 * The step list a spec without `steps` walks, made from its strategy fields, as rollouts went before step
 * lists: shadow first (when enabled), then the canary ladder or one blue-green switch, an optional
 * approval before the promotion, and the bake. Shadow-only is the shadow step alone.
 */
import type { ApproveStep } from './approve';
import type { Step } from './kind';
import type { ShadowStep } from './shadow';

export interface StrategyFields {
  strategy: 'canary' | 'blue-green' | 'shadow-only';
  shadow: ShadowStep & { enabled: boolean };
  /** The canary ladder in basis points, ending at 10000. */
  canary: { steps: number[] };
  approval: ApproveStep & { required: boolean };
  bake: { duration: number };
}

export function defaultSteps(f: StrategyFields): Step[] {
  const { enabled, ...shadow } = f.shadow;
  if (f.strategy === 'shadow-only') return [{ shadow: { ...shadow, require: 'none' } }];
  const { required, timeout, onTimeout } = f.approval;
  const approve = { timeout, onTimeout };
  const ladder = f.strategy === 'canary' ? f.canary.steps.filter((s) => s < 10000) : [];
  return [
    ...(enabled ? [{ shadow: { ...shadow } }] : []),
    ...ladder.map((bps) => ({ setShare: bps })),
    ...(required ? [{ approve }] : []),
    { setShare: 10000 },
    { bake: f.bake },
  ];
}
