/**
 * When a rollout has gone too long without progress (like Argo Rollouts' progressDeadlineSeconds): pure
 * rules on the workflow's clock, used unchanged by the workflow (workflows/run/deadlines.ts) and driven at
 * their real values (24 h, 7 d) by a virtual clock in test/unit/deadlines.test.ts.
 */

/** From when the current step's deadline counts, and which deadlines have acted already. */
export interface DeadlineState {
  stepFromMs: number;
  stepPassed: boolean;
  rolloutPassed: boolean;
}

export interface DeadlineLimits {
  /** A step that has not advanced for this long. */
  step: number;
  /** A rollout not promoted this long after it started. */
  rollout: number;
}

export interface PassedDeadline {
  kind: 'step' | 'rollout';
  elapsedMs: number;
  deadlineMs: number;
}

/**
 * The deadline that passed at `nowMs` and has not acted yet (the rollout's first), marking it in `state`;
 * undefined when none. Each acts once; the step's again after restartStep().
 */
export function takePassedDeadline(
  state: DeadlineState,
  limits: DeadlineLimits,
  startedMs: number,
  nowMs: number,
): PassedDeadline | undefined {
  if (!state.rolloutPassed && nowMs - startedMs >= limits.rollout) {
    state.rolloutPassed = true;
    return { kind: 'rollout', elapsedMs: nowMs - startedMs, deadlineMs: limits.rollout };
  }
  if (!state.stepPassed && nowMs - state.stepFromMs >= limits.step) {
    state.stepPassed = true;
    return { kind: 'step', elapsedMs: nowMs - state.stepFromMs, deadlineMs: limits.step };
  }
  return undefined;
}

/** A new step, or a person took the rollout back: the step's deadline counts afresh from `nowMs`. */
export function restartStep(state: DeadlineState, nowMs: number): void {
  state.stepFromMs = nowMs;
  state.stepPassed = false;
}

/** Whether an approval wait that began at `sinceMs` has run out at `nowMs`. */
export function approvalTimedOut(sinceMs: number, timeoutMs: number, nowMs: number): boolean {
  return nowMs - sinceMs >= timeoutMs;
}
