/**
 * Measuring metric checks (the spec's background `analysis` through the canary and the bake, and the
 * analysis steps): each check when its interval has passed, its measurement folded into its state in
 * `status.analysis` (src/decision/analysis/tally.ts). A failed check records the decision with the query
 * and its value and rolls back; one inconclusive for `holdAfter` records a hold and alerts once. With no
 * checks in the spec nothing here issues a command.
 */
import { isPerArm, type MetricCheck } from '../../src/decision/analysis/check';
import type { PlaceholderValues } from '../../src/decision/analysis/placeholders';
import { foldMeasurement, isDue, newCheckState, type CheckState } from '../../src/decision/analysis/tally';
import { formatDuration } from '../../src/decision/config/duration';
import type { Decision } from '../../src/decision/policy';
import { acts } from './activities';
import { failureText, interruptible } from './gates';
import { RollbackRequested, type RolloutRun } from './run';

/** The placeholders' values for the arm the rollout watches, and for stable during the canary. */
function placeholderValues(r: RolloutRun): { subject: PlaceholderValues; stable?: PlaceholderValues } {
  const candidate = { route: r.route, target: r.candidateName, variant: r.candidateName };
  if (r.promoted) return { subject: { ...candidate, arm: 'stable' } };
  const stable = r.claim.stable || r.status.stable;
  return {
    subject: { ...candidate, arm: 'canary' },
    stable: { route: r.route, target: stable, variant: stable, arm: 'stable' },
  };
}

/**
 * Measures the checks that are due, in order. Throws RollbackRequested for a failed check (or the
 * rollback a person asked for while a source was slow).
 */
export async function measureDue(
  r: RolloutRun,
  checks: readonly MetricCheck[],
  states: CheckState[],
  holdAfterMs: number,
): Promise<void> {
  const values = placeholderValues(r);
  for (const check of checks) {
    const i = states.findIndex((s) => s.name === check.name);
    if (i < 0 || !isDue(states[i], check, Date.now())) continue;
    const settled = await interruptible(r, () =>
      acts.measureCheck.executeWithOptions(
        {
          startToCloseTimeout: 2 * check.timeout + 5_000,
          retry: { maximumAttempts: 2 },
          summary: `measure ${check.name}`,
        },
        [{ check, ...values }],
      ),
    );
    if (r.rollbackRequest) throw r.rollbackRequest;
    const m =
      settled && 'value' in settled
        ? settled.value
        : {
            query: '',
            value: null,
            error: `measurement failed: ${failureText(settled && 'error' in settled ? settled.error : 'interrupted')}`,
          };
    const folded = foldMeasurement(states[i], check, m, Date.now(), holdAfterMs);
    states[i] = folded.state;
    const stats: Decision['stats'] = {
      check: check.name,
      query: m.query,
      value: m.value,
      ...(m.stable !== undefined ? { stable: m.stable } : {}),
      failures: folded.state.failures,
      failureLimit: check.failureLimit,
    };
    if (folded.failed) {
      r.publish();
      const reason = `analysis check ${folded.assessment.reason} (${folded.state.failures} failure(s), failureLimit ${check.failureLimit})`;
      await r.record({
        action: 'rollback',
        policy: 'analysis',
        reasons: [reason, `query: ${m.query}`],
        stats,
      });
      void r.alert('analysis', `Analysis failed on ${r.route}: ${reason}`, stats);
      throw new RollbackRequested(reason, 'analysis', {
        analysis: {
          check: check.name,
          query: m.query,
          value: m.value,
          ...(m.stable !== undefined ? { stable: m.stable } : {}),
          successCondition: check.successCondition,
          ...(check.failureCondition ? { failureCondition: check.failureCondition } : {}),
          failures: folded.state.failures,
          failureLimit: check.failureLimit,
        },
      });
    }
    if (folded.becameHeld) {
      const reason = `analysis check ${folded.assessment.reason}, for ${formatDuration(holdAfterMs)}: holding`;
      await r.record({ action: 'hold', policy: 'analysis', reasons: [reason], stats });
      void r.alert(
        'analysis',
        `Rollout of ${r.candidateName} on ${r.route} held: ${reason}. Fix the source, or promote or roll back by hand`,
        stats,
      );
    }
  }
  r.publish();
}

/** Whether a check lets the rollout go on: its latest measurement succeeded. */
export const conclusive = (s: CheckState) => s.verdict === 'ok';

/**
 * The spec's background checks, at a check of the canary or the bake: 'none' (no checks there), 'ok', or
 * 'inconclusive' (a check's latest measurement did not succeed: the step must not advance). Per-arm
 * checks are measured during the canary only, where both arms serve.
 */
export async function backgroundAnalysis(
  r: RolloutRun,
  during: 'canary' | 'bake',
): Promise<'none' | 'ok' | 'inconclusive'> {
  const spec = r.spec.analysis;
  if (!spec || !spec.during.includes(during)) return 'none';
  const checks = spec.checks.filter((c) => during === 'canary' || !isPerArm(c.provider));
  if (checks.length === 0) return 'none';
  const status = (r.status.analysis ??= { background: spec.checks.map(newCheckState) });
  await measureDue(r, checks, status.background, spec.holdAfter);
  const states = status.background.filter((s) => checks.some((c) => c.name === s.name));
  return states.every(conclusive) ? 'ok' : 'inconclusive';
}

/** The background checks as lines of a decision's reasons. */
export function analysisReasons(r: RolloutRun): string[] {
  return (r.status.analysis?.background ?? []).flatMap((s) => (s.last ? [`analysis ${s.last.reason}`] : []));
}
