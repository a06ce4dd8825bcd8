/**
 * Rollback triggers: absolute guards over a recent window, checked on a timer; a firing trigger rolls
 * back at once. They complement the canary policy (which compares canary with stable): a trigger
 * catches "the canary is plainly broken" even when stable is broken too, or has no traffic.
 *
 * The seed checks every metric with `current > threshold`. For quality higher is better, so that rule
 * rolls back when quality is GOOD (4.5 > 3.0) and never when it collapses. Each trigger here has an
 * explicit direction, a window, and a minimum sample so that one failed request out of one (a 100%
 * error rate) is not an emergency. `legacyGreaterThan()` rebuilds the seed's behaviour for comparison.
 */
import { fixed } from './format';
import type { ArmStats } from './types';

export type TriggerDirection = 'above' | 'below';

/** The seed's four metrics. */
export type TriggerMetricName = 'error_rate' | 'avg_quality_score' | 'p95_latency_ms' | 'cost_per_request';

export interface TriggerSpec {
  metric: TriggerMetricName;
  threshold: number;
  /** 'above': fires when value > threshold. 'below': fires when value < threshold. */
  direction: TriggerDirection;
  windowMinutes: number;
  /** The trigger stays silent until its window holds this many requests (or scores, see `sampleOf`). */
  minSample: number;
  sampleOf: 'requests' | 'scores';
  /** Marks specs built by legacyGreaterThan(): the seed's direction-less rule, kept for comparison. */
  legacy?: boolean;
}

/** One metric over one trigger's window. */
export interface TriggerMetric {
  value: number | null;
  requests: number;
  scores: number;
}

export type TriggerStatus = 'fired' | 'ok' | 'insufficient-sample' | 'no-data';

export interface TriggerResult {
  metric: TriggerMetricName;
  value: number | null;
  threshold: number;
  direction: TriggerDirection;
  windowMinutes: number;
  sampleSize: number;
  minSample: number;
  status: TriggerStatus;
  fired: boolean;
  reason: string;
}

export interface TriggerDefaults {
  thresholds: Record<TriggerMetricName, number>;
  /** Minimum requests for the request-based triggers. Default 20. */
  minRequests: number;
  /** Minimum scores for the quality trigger. Default 10. */
  minScores: number;
}

export const DEFAULT_TRIGGER_SETTINGS: Readonly<TriggerDefaults> = Object.freeze({
  thresholds: Object.freeze({
    error_rate: 0.05,
    // Scores are on [0, 1] (every evaluator normalised): 0.5 is the old default of 3 on a 1-5 judge scale.
    avg_quality_score: 0.5,
    p95_latency_ms: 30000,
    cost_per_request: 0.1,
  }),
  minRequests: 20,
  minScores: 10,
});

export interface TriggerOverrides {
  thresholds?: Partial<Record<TriggerMetricName, number>>;
  minRequests?: number;
  minScores?: number;
}

/** The seed's four triggers, each with a direction, window and minimum sample. */
export function defaultTriggers(overrides: TriggerOverrides = {}): TriggerSpec[] {
  const s = DEFAULT_TRIGGER_SETTINGS;
  const t = { ...s.thresholds, ...overrides.thresholds };
  const minRequests = overrides.minRequests ?? s.minRequests;
  const minScores = overrides.minScores ?? s.minScores;
  return [
    {
      metric: 'error_rate',
      threshold: t.error_rate,
      direction: 'above',
      windowMinutes: 15,
      minSample: minRequests,
      sampleOf: 'requests',
    },
    {
      metric: 'avg_quality_score',
      threshold: t.avg_quality_score,
      direction: 'below',
      windowMinutes: 60,
      minSample: minScores,
      sampleOf: 'scores',
    },
    {
      metric: 'p95_latency_ms',
      threshold: t.p95_latency_ms,
      direction: 'above',
      windowMinutes: 15,
      minSample: minRequests,
      sampleOf: 'requests',
    },
    {
      metric: 'cost_per_request',
      threshold: t.cost_per_request,
      direction: 'above',
      windowMinutes: 60,
      minSample: minRequests,
      sampleOf: 'requests',
    },
  ];
}

export const DEFAULT_TRIGGERS: readonly TriggerSpec[] = Object.freeze(
  defaultTriggers().map((t) => Object.freeze(t)),
);

/**
 * The seed's flaw, reproduced on purpose: every trigger fires on `current > threshold` and on any sample
 * (quality 4.5 > 3.0 "fires"; a collapse to 1.0 does not). For comparisons and tests only.
 */
export function legacyGreaterThan(triggers: readonly TriggerSpec[] = DEFAULT_TRIGGERS): TriggerSpec[] {
  return triggers.map((t) => ({ ...t, direction: 'above', minSample: 0, legacy: true }));
}

const usable = (x: number | null | undefined): number | null =>
  typeof x === 'number' && Number.isFinite(x) ? x : null;
const nonNegative = (x: number) => (Number.isFinite(x) && x > 0 ? x : 0);

/** The four metrics of one arm over one window. */
export function triggerMetricsFromArm(stats: ArmStats): Record<TriggerMetricName, TriggerMetric> {
  const requests = nonNegative(stats.requests);
  const scores = nonNegative(stats.scored);
  const perRequest = (x: number) => (requests > 0 ? usable(x / requests) : null);
  return {
    error_rate: { value: perRequest(nonNegative(stats.errors)), requests, scores },
    avg_quality_score: { value: scores > 0 ? usable(stats.qualityMean) : null, requests, scores },
    p95_latency_ms: { value: requests > 0 ? usable(stats.p95LatencyMs) : null, requests, scores },
    cost_per_request: { value: perRequest(nonNegative(stats.costUsd)), requests, scores },
  };
}

/** Metrics for each trigger from the arm's stats over that trigger's own window. */
export function triggerMetricsByWindow(
  triggers: readonly TriggerSpec[],
  statsByWindowMinutes: Readonly<Record<number, ArmStats>>,
): Partial<Record<TriggerMetricName, TriggerMetric>> {
  const out: Partial<Record<TriggerMetricName, TriggerMetric>> = {};
  for (const t of triggers) {
    const stats = statsByWindowMinutes[t.windowMinutes];
    if (stats) out[t.metric] = triggerMetricsFromArm(stats)[t.metric];
  }
  return out;
}

function evaluateOne(t: TriggerSpec, metric: TriggerMetric | undefined): TriggerResult {
  const value = usable(metric?.value);
  const sampleSize = metric ? nonNegative(t.sampleOf === 'scores' ? metric.scores : metric.requests) : 0;
  const base = {
    metric: t.metric,
    value,
    threshold: t.threshold,
    direction: t.direction,
    windowMinutes: t.windowMinutes,
    sampleSize,
    minSample: t.minSample,
  };
  const op = t.direction === 'above' ? '>' : '<';
  const where = `${t.metric} over ${t.windowMinutes} min`;
  if (value === null) {
    return { ...base, status: 'no-data', fired: false, reason: `${where}: no data` };
  }
  if (sampleSize < t.minSample) {
    return {
      ...base,
      status: 'insufficient-sample',
      fired: false,
      reason: `${where}: ${fixed(value, 4)} on ${sampleSize} ${t.sampleOf} (< ${t.minSample}); not judged`,
    };
  }
  const fired = t.direction === 'above' ? value > t.threshold : value < t.threshold;
  const legacy = t.legacy ? ' [legacy greater-than rule]' : '';
  return {
    ...base,
    status: fired ? 'fired' : 'ok',
    fired,
    reason: `${where}: ${fixed(value, 4)} ${fired ? op : `not ${op}`} ${t.threshold} on ${sampleSize} ${t.sampleOf}${legacy}`,
  };
}

/** Evaluates every trigger; `fired` lists the ones that call for a rollback. */
export function evaluateTriggers(
  triggers: readonly TriggerSpec[],
  metricsByName: Readonly<Partial<Record<TriggerMetricName, TriggerMetric>>>,
): { fired: TriggerResult[]; results: TriggerResult[] } {
  const results = triggers.map((t) => evaluateOne(t, metricsByName[t.metric]));
  return { fired: results.filter((r) => r.fired), results };
}
