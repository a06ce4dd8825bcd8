/**
 * The executors of the step kinds, by kind: one file each, listed here (one line per kind). The spec's
 * side of each kind is src/decision/config/steps/<kind>.ts; its header says how to add one.
 */
import type { StepExecutor } from './executor';
import { analysisStep } from './analysis';
import { approveStep } from './approve';
import { bakeStep } from './bake';
import { evalStep } from './eval';
import { pauseStep } from './pause';
import { setShareStep } from './set-share';
import { shadowStep } from './shadow';
import { webhookStep } from './webhook';

export const STEP_EXECUTORS: ReadonlyMap<string, StepExecutor> = new Map(
  [evalStep, shadowStep, setShareStep, pauseStep, approveStep, bakeStep, webhookStep, analysisStep].map(
    (e) => [e.kind, e],
  ),
);

export function executorOf(kind: string): StepExecutor {
  const executor = STEP_EXECUTORS.get(kind);
  if (!executor) throw new Error(`no executor for step kind '${kind}' (workflows/steps/index.ts)`);
  return executor;
}
