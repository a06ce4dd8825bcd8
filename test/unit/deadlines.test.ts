/**
 * The progress deadlines and the approval timeout at their real default values (24 h per step, 7 d per
 * rollout, 24 h to approve), driven by a virtual clock through the checks a production rollout makes
 * (every 5 minutes, for more than a week). The workflow calls these rules unchanged
 * (workflows/run/deadlines.ts, workflows/steps/approve.ts).
 */
import { describe, expect, it } from 'vitest';
import { parseRolloutSpec } from '../../src/decision/config/rollout-spec';
import {
  approvalTimedOut,
  restartStep,
  takePassedDeadline,
  type DeadlineState,
  type PassedDeadline,
} from '../../src/decision/policy';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const CHECK = 5 * MIN;
const defaults = parseRolloutSpec({ route: 'r', candidate: 'openai:gpt-4o', approval: { required: true } });

/** Checks every 5 minutes from `fromMs` to `toMs`; `onCheck` may act (a person, a new step). */
function drive(
  state: DeadlineState,
  startedMs: number,
  fromMs: number,
  toMs: number,
  onCheck: (now: number) => void = () => {},
): Array<PassedDeadline & { at: number }> {
  const fired: Array<PassedDeadline & { at: number }> = [];
  for (let now = fromMs; now <= toMs; now += CHECK) {
    onCheck(now);
    const passed = takePassedDeadline(state, defaults.progressDeadline, startedMs, now);
    if (passed) fired.push({ ...passed, at: now });
  }
  return fired;
}

describe('progress deadlines at their defaults, on a virtual clock', () => {
  it('are 24 h per step and 7 d per rollout, holding', () => {
    expect(defaults.progressDeadline).toEqual({ step: DAY, rollout: 7 * DAY, action: 'hold' });
  });

  it('a held step passes its deadline at the first check 24 h after it began, once', () => {
    const state = { stepFromMs: 0, stepPassed: false, rolloutPassed: false };
    const fired = drive(state, 0, CHECK, 3 * DAY);
    expect(fired).toEqual([{ kind: 'step', elapsedMs: DAY, deadlineMs: DAY, at: DAY }]);
  });

  it('a person resuming restarts the step: the next deadline is 24 h later', () => {
    const state = { stepFromMs: 0, stepPassed: false, rolloutPassed: false };
    const resumeAt = DAY + 2 * HOUR;
    const fired = drive(state, 0, CHECK, 3 * DAY, (now) => now === resumeAt && restartStep(state, now));
    expect(fired.map((f) => [f.kind, f.at])).toEqual([
      ['step', DAY],
      ['step', resumeAt + DAY],
    ]);
  });

  it('steps that advance every 20 h never pass theirs; the rollout passes its 7 d once, at 7 d', () => {
    const state = { stepFromMs: 0, stepPassed: false, rolloutPassed: false };
    const fired = drive(
      state,
      0,
      CHECK,
      9 * DAY,
      (now) => now % (20 * HOUR) === 0 && restartStep(state, now),
    );
    expect(fired).toEqual([{ kind: 'rollout', elapsedMs: 7 * DAY, deadlineMs: 7 * DAY, at: 7 * DAY }]);
  });

  it('23 h 55 m is not 24 h', () => {
    const state = { stepFromMs: 0, stepPassed: false, rolloutPassed: false };
    expect(drive(state, 0, CHECK, DAY - CHECK)).toEqual([]);
  });
});

describe('the approval timeout at its default, on a virtual clock', () => {
  it('is 24 h, then rollback', () => {
    expect(defaults.steps).toContainEqual({ approve: { timeout: DAY, onTimeout: 'rollback' } });
  });

  it('runs out at the first check 24 h after the wait began, not before', () => {
    const checks = [];
    for (let now = 0; now <= 2 * DAY; now += CHECK) checks.push([now, approvalTimedOut(0, DAY, now)]);
    const first = checks.find(([, out]) => out)!;
    expect(first[0]).toBe(DAY);
    expect(checks.filter(([now]) => (now as number) < DAY).every(([, out]) => !out)).toBe(true);
  });
});
