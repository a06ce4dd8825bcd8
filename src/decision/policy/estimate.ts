/**
 * How long a hold of the sequential policy will last: which condition holds the step, what it still
 * needs ("about 1 700 more judged canary answers to show the candidate within 2% of stable"), and when
 * that is expected at the current traffic and judge rate.
 *
 * Method: project the data forward as they are expected to arrive if the candidate is as good as stable
 * (requests at the current rate and split; the canary's errors, slow requests and scores at the rates
 * and mean pooled over both arms, so the observed difference fades as new data dilute it), and ask each
 * holding condition, with the policy's own code (sequential-tests.ts), at what horizon it would let go.
 * The answer is rounded up to the next policy check, when the step can actually advance. A candidate
 * that really is worse makes the estimate optimistic: that is the point of the rollback tests.
 */
import type { SequentialConfig } from './config';
import { DEFAULT_SEQUENTIAL_CONFIG } from './config';
import { cleanPair, cleanSteps } from './arm';
import { badEventTest, errorGate, finalGate, qualityDifference, qualityTest } from './sequential-tests';
import { nextShareBps } from './steps';
import { roughDuration } from '../config/duration';
import type { ArmPair, ArmStats, PolicyInput } from './types';

// (re-exported: callers that only format a duration need not load the policy)
export { roughDuration };

export interface HoldEstimateInput extends PolicyInput {
  /** Time since the current step started and since the canary phase started. */
  stepElapsedMs: number;
  canaryElapsedMs: number;
  /** Time between policy checks: a condition met between two checks lets the step go at the next. */
  checkIntervalMs?: number;
}

export type HoldCondition =
  | 'step minimum (scores)'
  | 'step minimum (requests)'
  | 'quality comparison'
  | 'quality leaning'
  | 'errors leaning'
  | 'slow requests leaning'
  | 'refusals leaning'
  | 'attempt errors leaning'
  | 'final gate (quality)'
  | 'final gate (errors)';

export interface HoldBlocker {
  condition: HoldCondition;
  /** What it needs more of, on the canary arm. */
  unit: 'judged answers' | 'requests';
  /** How many more (expected); null when not within the horizon at the current rates. */
  more: number | null;
  /** Expected time until it lets go, rounded up to a check; null when not within the horizon. */
  etaMs: number | null;
  /** One sentence, e.g. "about 1 700 more judged canary answers to show the candidate within 2% of stable". */
  needs: string;
}

export interface HoldEstimate {
  /** The condition that holds longest: the step advances when it lets go. */
  binding: HoldBlocker;
  /** Every condition that holds now, longest first. */
  blockers: HoldBlocker[];
  /** Expected time until the step can advance (the binding condition's); null when not within the horizon. */
  etaMs: number | null;
  /** Canary requests and judged canary answers per minute, as used. */
  rates: { canaryRequestsPerMin: number; canaryScoresPerMin: number };
  /** "final gate (quality): about 1 700 more judged canary answers to show ...; about 2h 10m at 14 judged answers/min". */
  summary: string;
}

/** Longest horizon looked at: beyond a year, "not at this rate" is the useful answer. */
const HORIZON_MS = 365 * 86_400_000;

interface Rates {
  canaryRequests: number;
  stableRequests: number;
  canaryScores: number;
  stableScores: number;
}

/** Per-ms rates: from the current step when it has enough traffic, else from the whole canary phase. */
function currentRates(input: HoldEstimateInput, cum: ArmPair, step: ArmPair): Rates {
  const share = Math.min(Math.max(input.context.shareBps / 10000, 0), 1);
  const fromStep = input.stepElapsedMs > 0 && step.canary.requests >= 30;
  let canaryRequests: number;
  let stableRequests: number;
  if (fromStep) {
    canaryRequests = step.canary.requests / input.stepElapsedMs;
    stableRequests = step.stable.requests / input.stepElapsedMs;
  } else {
    const total =
      input.canaryElapsedMs > 0 ? (cum.canary.requests + cum.stable.requests) / input.canaryElapsedMs : 0;
    canaryRequests = total * share;
    stableRequests = total * (1 - share);
  }
  // Judged fraction per arm: the step's when it has scores (the judge's share may move with the split).
  const judged = (s: ArmStats, c: ArmStats) =>
    fromStep && s.scored >= 20 && s.requests > 0
      ? s.scored / s.requests
      : c.requests > 0
        ? c.scored / c.requests
        : 0;
  return {
    canaryRequests,
    stableRequests,
    canaryScores: canaryRequests * Math.min(1, judged(step.canary, cum.canary)),
    stableScores: stableRequests * Math.min(1, judged(step.stable, cum.stable)),
  };
}

/** What both arms look like when an equal candidate is expected: pooled rates and mean. */
interface Pooled {
  errorRate: number;
  slowRate: number;
  /** Refusals per served request, provider attempts per served request, failed ones per attempt. */
  refusalsPerRequest: number;
  attemptsPerRequest: number;
  attemptErrorRate: number;
  mean: number | null;
  canaryVariance: number | null;
  stableVariance: number | null;
}

function pooled(cum: ArmPair): Pooled {
  const requests = cum.canary.requests + cum.stable.requests;
  const scored = cum.canary.scored + cum.stable.scored;
  const sum =
    (cum.canary.qualityMean ?? 0) * cum.canary.scored + (cum.stable.qualityMean ?? 0) * cum.stable.scored;
  const variance = cum.stable.qualityVariance ?? cum.canary.qualityVariance;
  const both = (f: (a: ArmStats) => number | undefined) => (f(cum.canary) ?? 0) + (f(cum.stable) ?? 0);
  const attempts = both((a) => a.attempts);
  return {
    errorRate: requests > 0 ? (cum.canary.errors + cum.stable.errors) / requests : 0,
    slowRate: requests > 0 ? (cum.canary.slow + cum.stable.slow) / requests : 0,
    refusalsPerRequest: requests > 0 ? both((a) => a.refusals) / requests : 0,
    attemptsPerRequest: requests > 0 ? Math.max(1, attempts / requests) : 1,
    attemptErrorRate: attempts > 0 ? both((a) => a.attemptErrors) / attempts : 0,
    mean: scored > 0 ? sum / scored : null,
    canaryVariance: cum.canary.qualityVariance ?? variance,
    stableVariance: variance,
  };
}

/** `arm` plus `requests` more requests and `scored` more scores at the pooled rates and mean. */
function grow(arm: ArmStats, requests: number, scored: number, p: Pooled, variance: number | null): ArmStats {
  const n0 = arm.scored;
  const n = n0 + scored;
  let qualityMean = arm.qualityMean;
  let qualityVariance = arm.qualityVariance;
  if (scored > 0 && p.mean !== null) {
    const m0 = arm.qualityMean ?? p.mean;
    qualityMean = (n0 * m0 + scored * p.mean) / n;
    const v = variance ?? 0;
    const ss = (n0 >= 2 ? (n0 - 1) * (arm.qualityVariance ?? v) : 0) + scored * v;
    const between = n0 > 0 ? ((n0 * scored) / n) * (m0 - p.mean) ** 2 : 0;
    qualityVariance = n >= 2 ? (ss + between) / (n - 1) : null;
  }
  return {
    ...arm,
    requests: arm.requests + requests,
    errors: arm.errors + requests * p.errorRate,
    slow: arm.slow + requests * p.slowRate,
    refusals: (arm.refusals ?? 0) + requests * p.refusalsPerRequest,
    attempts: (arm.attempts ?? arm.requests) + requests * p.attemptsPerRequest,
    attemptErrors: (arm.attemptErrors ?? 0) + requests * p.attemptsPerRequest * p.attemptErrorRate,
    scored: n,
    qualityMean: n > 0 ? qualityMean : null,
    qualityVariance,
  };
}

function project(cum: ArmPair, step: ArmPair, rates: Rates, p: Pooled, dt: number) {
  const add = (pair: ArmPair): ArmPair => ({
    canary: grow(pair.canary, rates.canaryRequests * dt, rates.canaryScores * dt, p, p.canaryVariance),
    stable: grow(pair.stable, rates.stableRequests * dt, rates.stableScores * dt, p, p.stableVariance),
  });
  return { cum: add(cum), step: add(step) };
}

interface Condition {
  condition: HoldCondition;
  unit: HoldBlocker['unit'];
  holds: (cum: ArmPair, step: ArmPair) => boolean;
  needs: (more: string) => string;
}

/** The conditions that can hold a step, in the policy's terms. */
function conditions(input: PolicyInput, config: SequentialConfig): Condition[] {
  const pr = config.promotion;
  const g = config.finalGate;
  const logCaution = Math.log(pr.maxEValue);
  const next = nextShareBps(input.context);
  const gated = g.enabled && (next >= g.fromBps || input.context.isFinalStep);
  const scratch = () => ({}) as Record<string, number | string | null>;
  // Earlier steps are closed: only the current step grows in the projection.
  const previous = cleanSteps(input.previousSteps);
  const leaning = (
    condition: HoldCondition,
    unit: HoldBlocker['unit'],
    test: (cum: ArmPair, step: ArmPair) => number | null,
    label: string,
  ): Condition => ({
    condition,
    unit,
    holds: (cum, step) => {
      const logE = test(cum, step);
      return logE !== null && logE > logCaution;
    },
    needs: (more) =>
      `${label} lean${label === 'quality' ? 's' : ''} toward worse (e-value above ${pr.maxEValue}); ${more} more canary ${unit} for that to fade if the candidate is as good as stable`,
  });
  const list: Condition[] = [
    {
      condition: 'step minimum (scores)',
      unit: 'judged answers',
      holds: (_, step) => step.canary.scored < pr.minCanaryScoredPerStep,
      needs: (more) =>
        `this step needs ${more} more judged canary answers (minimum ${pr.minCanaryScoredPerStep})`,
    },
    {
      condition: 'step minimum (requests)',
      unit: 'requests',
      holds: (_, step) => step.canary.requests < pr.minCanaryRequestsPerStep,
      needs: (more) =>
        `this step needs ${more} more canary requests (minimum ${pr.minCanaryRequestsPerStep})`,
    },
    {
      condition: 'quality comparison',
      unit: 'judged answers',
      holds: (cum) =>
        (pr.minCanaryScoredPerStep > 0 && qualityDifference(cum, config) === null) ||
        cum.stable.requests === 0,
      needs: (more) => `quality needs ${more} more judged canary answers before the arms compare`,
    },
    leaning(
      'quality leaning',
      'judged answers',
      (cum) => qualityTest(cum, qualityDifference(cum, config), config, scratch()).logE,
      'quality',
    ),
    leaning(
      'errors leaning',
      'requests',
      (cum, step) => badEventTest('errors', cum, step, config, scratch(), previous).logE,
      'errors',
    ),
    leaning(
      'slow requests leaning',
      'requests',
      (cum, step) => badEventTest('slow', cum, step, config, scratch(), previous).logE,
      'slow requests',
    ),
    leaning(
      'refusals leaning',
      'requests',
      (cum, step) => badEventTest('refusals', cum, step, config, scratch(), previous).logE,
      'refusals',
    ),
    leaning(
      'attempt errors leaning',
      'requests',
      (cum, step) => badEventTest('attemptErrors', cum, step, config, scratch(), previous).logE,
      'attempt errors',
    ),
  ];
  if (gated) {
    list.push(
      {
        condition: 'final gate (quality)',
        unit: 'judged answers',
        holds: (cum) => !finalGate(cum, qualityDifference(cum, config), config, scratch()).passed,
        needs: (more) =>
          `${more} more judged canary answers to show the candidate within ${Number((g.toleranceRel * 100).toFixed(2))}% of stable`,
      },
      {
        condition: 'final gate (errors)',
        unit: 'requests',
        holds: (cum, step) => errorGate(cum, step, config, scratch(), previous)?.passed === false,
        needs: (more) =>
          `${more} more canary requests to show its error rate below ${g.errorRatio}× stable's`,
      },
    );
  }
  return list;
}

/** "about 1 700": two significant figures, grouped by thousands, as a person would say it. */
export function roughCount(n: number): string {
  const x = Math.max(1, Math.ceil(n));
  const rounded = x < 100 ? x : Number(x.toPrecision(2));
  const grouped = String(rounded).replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
  return x < 100 ? grouped : `about ${grouped}`;
}

const perMinute = (perMs: number) => {
  const x = perMs * 60_000;
  return x >= 10 ? String(Math.round(x)) : String(Number(x.toPrecision(2)));
};

/**
 * The estimate for a step that is held now, or null when no promotion condition holds it (the policy
 * promotes, rolls back, or the canary already serves 100%). Pure; `config` is the resolved sequential config.
 */
export function estimateHold(
  input: HoldEstimateInput,
  config: SequentialConfig = DEFAULT_SEQUENTIAL_CONFIG,
): HoldEstimate | null {
  if (input.context.shareBps >= 10000) return null;
  const cum = cleanPair(input.cumulative);
  const step = cleanPair(input.step);
  const rates = currentRates(input, cum, step);
  const p = pooled(cum);
  const interval = input.checkIntervalMs && input.checkIntervalMs > 0 ? input.checkIntervalMs : 0;
  const blockers: HoldBlocker[] = [];
  for (const c of conditions(input, config)) {
    if (!c.holds(cum, step)) continue;
    const rate = c.unit === 'requests' ? rates.canaryRequests : rates.canaryScores;
    const holdsAt = (dt: number) => {
      const proj = project(cum, step, rates, p, dt);
      return c.holds(proj.cum, proj.step);
    };
    let eta: number | null = null;
    if (rate > 0) {
      // Doubling, then bisection: the conditions let go monotonically as expected data accumulate.
      let lo = 0;
      let hi = 1_000;
      while (hi <= HORIZON_MS && holdsAt(hi)) {
        lo = hi;
        hi *= 2;
      }
      if (hi <= HORIZON_MS) {
        while (hi - lo > 1_000) {
          const mid = (lo + hi) / 2;
          if (holdsAt(mid)) lo = mid;
          else hi = mid;
        }
        eta = hi;
      }
    }
    const more = eta === null ? null : rate * eta;
    const etaMs = eta === null ? null : interval > 0 ? Math.ceil(eta / interval) * interval : eta;
    blockers.push({
      condition: c.condition,
      unit: c.unit,
      more: more === null ? null : Math.ceil(more),
      etaMs,
      needs: c.needs(more === null ? 'many' : roughCount(more)),
    });
  }
  if (blockers.length === 0) return null;
  blockers.sort((a, b) => (b.etaMs ?? Infinity) - (a.etaMs ?? Infinity));
  const binding = blockers[0];
  const rateText = `${binding.unit === 'requests' ? perMinute(rates.canaryRequests) + ' canary requests' : perMinute(rates.canaryScores) + ' judged canary answers'}/min`;
  const when =
    binding.etaMs === null
      ? rates.canaryRequests > 0
        ? `not within a year at the current ${rateText}`
        : 'no canary traffic yet to estimate from'
      : `expected in about ${roughDuration(binding.etaMs)} at the current ${rateText}`;
  return {
    binding,
    blockers,
    etaMs: binding.etaMs,
    rates: {
      canaryRequestsPerMin: rates.canaryRequests * 60_000,
      canaryScoresPerMin: rates.canaryScores * 60_000,
    },
    summary: `${binding.condition}: ${binding.needs}; ${when}`,
  };
}
