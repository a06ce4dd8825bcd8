/**
 * Defensive reading of ArmStats. The numbers come from SQL and from people's configs; a NaN from a
 * division by zero upstream must not turn into a rollback (or a promotion). Every policy reads arms
 * through `cleanArm`, so the tests below it can assume finite, non-negative, consistent counts.
 */
import type { ArmPair, ArmStats, BadEventCounts, StepCounts } from './types';

const count = (x: number | null | undefined): number =>
  typeof x === 'number' && Number.isFinite(x) && x > 0 ? x : 0;
const finiteOrNull = (x: number | null | undefined): number | null =>
  typeof x === 'number' && Number.isFinite(x) ? x : null;

/** An arm with non-negative finite counts, bad-event counts ≤ requests, and a mean only when scored > 0. */
export function cleanArm(arm: ArmStats | null | undefined): ArmStats {
  const requests = count(arm?.requests);
  let scored = count(arm?.scored);
  const qualityMean = scored > 0 ? finiteOrNull(arm?.qualityMean) : null;
  if (qualityMean === null) scored = 0; // scores without a usable mean cannot be used at all
  const variance = finiteOrNull(arm?.qualityVariance);
  return {
    requests,
    errors: Math.min(count(arm?.errors), requests),
    slow: Math.min(count(arm?.slow), requests),
    scored,
    qualityMean,
    qualityVariance: scored >= 2 && variance !== null && variance >= 0 ? variance : null,
    costUsd: count(arm?.costUsd),
    p95LatencyMs: finiteOrNull(arm?.p95LatencyMs),
    ...cleanExtra(arm, requests),
    refusalKinds: cleanKinds(arm?.refusalKinds),
  };
}

/**
 * Refusals, attempts and attempt errors: absent (statistics from before they were counted) reads as no
 * refusal and one attempt per request, none failed, which no test can take for evidence either way.
 */
function cleanExtra(arm: BadEventCounts | null | undefined, requests: number) {
  const attempts = arm?.attempts === undefined ? requests : count(arm.attempts);
  return {
    refusals: count(arm?.refusals),
    attempts,
    attemptErrors: Math.min(count(arm?.attemptErrors), attempts),
  };
}

function cleanKinds(kinds: Record<string, number> | null | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (kinds && typeof kinds === 'object')
    for (const [k, n] of Object.entries(kinds)) if (count(n) > 0) out[k] = count(n);
  return out;
}

export function cleanPair(pair: ArmPair | null | undefined): ArmPair {
  return { stable: cleanArm(pair?.stable), canary: cleanArm(pair?.canary) };
}

function cleanCounts(arm: BadEventCounts | null | undefined): BadEventCounts {
  const requests = count(arm?.requests);
  return {
    requests,
    errors: Math.min(count(arm?.errors), requests),
    slow: Math.min(count(arm?.slow), requests),
    ...cleanExtra(arm, requests),
  };
}

/** Earlier steps' counts, cleaned like arms (anything but a list is no earlier step). */
export function cleanSteps(steps: readonly StepCounts[] | null | undefined): StepCounts[] {
  if (!Array.isArray(steps)) return [];
  return steps.map((s) => ({ stable: cleanCounts(s?.stable), canary: cleanCounts(s?.canary) }));
}

/** Request and bad-event counts of one arm over some stretch of time. */
export interface ArmCounts {
  requests: number;
  bad: number;
}

/** Counts in `total` that are not in `part` (e.g. the canary phase before the current step). */
export function countsBefore(total: ArmCounts, part: ArmCounts): ArmCounts {
  const requests = Math.max(0, total.requests - part.requests);
  return { requests, bad: Math.min(requests, Math.max(0, total.bad - part.bad)) };
}
