/**
 * A check's running state: its measurements counted by outcome, the latest with its value and query (the
 * evidence), and how long it has been inconclusive. Plain JSON: it lives in the rollout's status, which
 * continue-as-new carries, and `status` and the UI show it.
 */
import { assess, isPerArm, type Assessment, type Measurement, type MetricCheck } from './check';

/**
 * 'ok': the latest measurement succeeded; 'failing': it failed, within failureLimit; 'failed': beyond it;
 * 'inconclusive' / 'held': no conclusive measurement lately (held: for holdAfter). Only 'ok' lets a step go on.
 */
export type CheckVerdict = 'pending' | 'ok' | 'failing' | 'inconclusive' | 'held' | 'failed';

export interface CheckState {
  name: string;
  perArm: boolean;
  measured: number;
  successes: number;
  failures: number;
  inconclusive: number;
  verdict: CheckVerdict;
  /** When it was last measured (workflow time, ms): the next measurement is due an interval later. */
  lastAtMs?: number;
  last?: Assessment & Measurement & { at: string };
  /** Since when every measurement has been inconclusive. */
  inconclusiveSinceMs?: number;
  /** The "held" alert went out for this inconclusive spell. */
  alerted?: boolean;
}

export function newCheckState(check: MetricCheck): CheckState {
  return {
    name: check.name,
    perArm: isPerArm(check.provider),
    measured: 0,
    successes: 0,
    failures: 0,
    inconclusive: 0,
    verdict: 'pending',
  };
}

export function isDue(state: CheckState, check: MetricCheck, nowMs: number): boolean {
  return state.lastAtMs === undefined || nowMs - state.lastAtMs >= check.interval;
}

export interface Folded {
  state: CheckState;
  assessment: Assessment;
  /** Failures now exceed failureLimit: the check has failed (roll back). */
  failed: boolean;
  /** Inconclusive for `holdAfterMs` just now: hold, and say so once. */
  becameHeld: boolean;
}

/**
 * One measurement folded into the state. A check fails once its failures exceed `failureLimit`; while
 * its latest measurement failed (within the limit) or is inconclusive it lets nothing through, and it is
 * 'held' once it has been inconclusive for `holdAfterMs`; a conclusive measurement ends the spell.
 */
export function foldMeasurement(
  before: CheckState,
  check: MetricCheck,
  m: Measurement,
  nowMs: number,
  holdAfterMs: number,
): Folded {
  const assessment = assess(check, m);
  const s: CheckState = {
    ...before,
    measured: before.measured + 1,
    lastAtMs: nowMs,
    last: { ...m, ...assessment, at: new Date(nowMs).toISOString() },
  };
  if (assessment.outcome === 'success') s.successes++;
  if (assessment.outcome === 'failure') s.failures++;
  if (assessment.outcome === 'inconclusive') {
    s.inconclusive++;
    s.inconclusiveSinceMs ??= nowMs;
  } else {
    s.inconclusiveSinceMs = undefined;
    s.alerted = undefined;
  }
  const failed = s.failures > check.failureLimit;
  const held = s.inconclusiveSinceMs !== undefined && nowMs - s.inconclusiveSinceMs >= holdAfterMs;
  s.verdict = failed
    ? 'failed'
    : s.inconclusiveSinceMs !== undefined
      ? held
        ? 'held'
        : 'inconclusive'
      : assessment.outcome === 'failure'
        ? 'failing'
        : 'ok';
  const becameHeld = held && !s.alerted;
  if (becameHeld) s.alerted = true;
  return { state: s, assessment, failed, becameHeld };
}
