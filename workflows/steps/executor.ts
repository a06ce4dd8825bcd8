/**
 * What a step kind does in the workflow: an executor taking the run. See src/decision/config/steps/index.ts
 * for how to add a kind; this file is the executor's half of the contract.
 */
import type { StepKind } from '../../src/decision/config/steps';
import type { RolloutRun } from '../run/run';

export interface StepRun<S> {
  /** The step's index in the list. */
  index: number;
  /**
   * In a run that continued as new in this step: the state the executor passed to `r.maybeContinue`
   * (it resumes its loop from there, without repeating what it did on entry).
   */
  resume?: S;
}

export interface StepExecutor {
  kind: string;
  run(r: RolloutRun, value: unknown, step: StepRun<unknown>): Promise<void>;
}

/** The executor of `kind`: `run` returns when the step is done, and throws RollbackRequested to roll back. */
export function defineStepExecutor<V, S = never>(
  kind: StepKind<V>,
  run: (r: RolloutRun, value: V, step: StepRun<S>) => Promise<void>,
): StepExecutor {
  return { kind: kind.kind, run: run as StepExecutor['run'] };
}
