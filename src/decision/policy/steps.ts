import type { StepContext } from './types';

/**
 * The share the next promotion moves to: the first rung of the ladder above the current share.
 * Read from the share itself rather than `stepIndex`, so a ladder edited mid-rollout (or a share set
 * by hand) still promotes to the next sensible rung; 10000 when the ladder has nothing above.
 */
export function nextShareBps(context: StepContext): number {
  for (const step of context.steps) if (step > context.shareBps) return Math.min(step, 10000);
  return 10000;
}
