/**
 * What the route guardian (workflows/guardian.ts) compares after a promotion, besides its absolute
 * triggers: the promoted model's refusal rate and attempt-error rate against what the previous model
 * showed on the same route while it served. An absolute threshold cannot tell "the new model refuses what
 * the old one served" from "this application always sends 3% malformed requests"; the previous model's
 * own rate can, as stable's does during the canary.
 *
 * The test is the canary policy's bad-event mixture (bad-event-test.ts) with the two periods as the two
 * arms: under "same rate", each bad event belongs to the new period with probability (its trials / all
 * trials). The earlier period is fixed while the new one grows, so the likelihood ratio is checked against
 * a small alpha per comparison (default 0.1%), and only once both periods have a minimum sample.
 */
import { badEventMixture } from './bad-event-test';
import { fixed } from './format';
import { dominantRefusal, roughPercent } from './sequential-tests';

/** One model's counts over one period (see ArmStats for the meaning of each). */
export interface PeriodCounts {
  requests: number;
  refusals?: number;
  refusalKinds?: Record<string, number>;
  attempts?: number;
  attemptErrors?: number;
}

export interface GuardianComparisonSettings {
  /** Chance of a switch back when the new model is exactly as good, per comparison kind. */
  alpha: number;
  /** Rate ratios (new / previous) the mixture is tuned to (all > 1). */
  rateRatios: number[];
  /** Trials each period needs before the comparison is judged. */
  minSample: number;
}

export const DEFAULT_GUARDIAN_COMPARISON: Readonly<GuardianComparisonSettings> = Object.freeze({
  alpha: 0.001,
  rateRatios: [1.5, 2, 3],
  minSample: 50,
});

export type ComparisonMetric = 'refusal_rate' | 'attempt_error_rate';

export interface ComparisonResult {
  metric: ComparisonMetric;
  /** The rate since the current model took over, and the previous model's. */
  value: number | null;
  previous: number | null;
  status: 'fired' | 'ok' | 'insufficient-sample';
  fired: boolean;
  reason: string;
}

const count = (x: number | undefined) => (typeof x === 'number' && Number.isFinite(x) && x > 0 ? x : 0);

function trials(metric: ComparisonMetric, c: PeriodCounts) {
  return metric === 'refusal_rate'
    ? { n: count(c.requests) + count(c.refusals), bad: count(c.refusals) }
    : { n: count(c.attempts ?? c.requests), bad: count(c.attemptErrors) };
}

/** The promoted model's refusal and attempt-error rates against the previous model's. */
export function compareWithPrevious(
  current: PeriodCounts,
  previous: PeriodCounts,
  settings: GuardianComparisonSettings = DEFAULT_GUARDIAN_COMPARISON,
): ComparisonResult[] {
  return (['refusal_rate', 'attempt_error_rate'] as const).map((metric) => {
    const now = trials(metric, current);
    const before = trials(metric, previous);
    const value = now.n > 0 ? now.bad / now.n : null;
    const prev = before.n > 0 ? before.bad / before.n : null;
    const what =
      metric === 'refusal_rate'
        ? `refusals: refused ${roughPercent(value)} of requests${now.bad > 0 ? ` as ${dominantRefusal(current.refusalKinds)}` : ''} since it took over, the previous model ${roughPercent(prev)}`
        : `attempt errors: ${roughPercent(value)} of attempts failed since it took over, the previous model ${roughPercent(prev)}`;
    const counts = `(${now.bad}/${now.n} vs ${before.bad}/${before.n})`;
    if (now.n < settings.minSample || before.n < settings.minSample)
      return {
        metric,
        value,
        previous: prev,
        status: 'insufficient-sample',
        fired: false,
        reason: `${what} ${counts}; fewer than ${settings.minSample} in a period, not judged`,
      };
    const e = badEventMixture(
      [{ canaryBad: now.bad, canaryRequests: now.n, stableBad: before.bad, stableRequests: before.n }],
      settings.rateRatios,
    );
    const threshold = -Math.log(settings.alpha);
    const fired = e.logLR >= threshold;
    return {
      metric,
      value,
      previous: prev,
      status: fired ? 'fired' : 'ok',
      fired,
      reason: `${what} ${counts}; mixture log LR ${fixed(e.logLR)} ${fired ? '≥' : '<'} ${fixed(threshold)}`,
    };
  });
}
