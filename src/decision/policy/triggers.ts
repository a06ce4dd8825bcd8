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
import { DEFAULT_WINDOWS, METRICS, metricNamed, type MetricName } from '../metrics';
import { fixed } from './format';
import type { ArmStats } from './types';

export type TriggerDirection = 'above' | 'below';

/** A metric of the registry (src/decision/metrics): the seed's four and the later ones. */
export type TriggerMetricName = MetricName;

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
  /** Thresholds of the metrics that have a trigger by default (the others only when a spec sets one). */
  thresholds: Partial<Record<TriggerMetricName, number>>;
  /** Minimum requests for the request-based triggers. Default 20. */
  minRequests: number;
  /** Minimum scores for the quality trigger. Default 10. */
  minScores: number;
}

export const DEFAULT_TRIGGER_SETTINGS: Readonly<TriggerDefaults> = Object.freeze({
  thresholds: Object.freeze(
    Object.fromEntries(
      METRICS.filter((m) => m.defaultThreshold !== undefined).map((m) => [m.name, m.defaultThreshold]),
    ),
  ),
  minRequests: 20,
  minScores: 10,
});

export interface TriggerOverrides {
  thresholds?: Partial<Record<TriggerMetricName, number>>;
  minRequests?: number;
  minScores?: number;
  /** Minutes of the 'short' and 'long' windows (default 15 and 60). */
  windowMinutes?: { short: number; long: number };
}

/**
 * One trigger per metric of the registry that has a threshold (its default, or the override's), with the
 * metric's direction, window and minimum sample, in registry order.
 */
export function defaultTriggers(overrides: TriggerOverrides = {}): TriggerSpec[] {
  const s = DEFAULT_TRIGGER_SETTINGS;
  const minRequests = overrides.minRequests ?? s.minRequests;
  const minScores = overrides.minScores ?? s.minScores;
  const windows = overrides.windowMinutes ?? DEFAULT_WINDOWS;
  const out: TriggerSpec[] = [];
  for (const m of METRICS) {
    const threshold = overrides.thresholds?.[m.name] ?? m.defaultThreshold;
    if (threshold === undefined) continue;
    out.push({
      metric: m.name,
      threshold,
      direction: m.direction,
      windowMinutes: windows[m.window],
      minSample: m.sampleOf === 'scores' ? minScores : minRequests,
      sampleOf: m.sampleOf,
    });
  }
  return out;
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

/** Every registry metric of one arm over one window. */
export function triggerMetricsFromArm(stats: ArmStats): Record<TriggerMetricName, TriggerMetric> {
  return Object.fromEntries(METRICS.map((m) => [m.name, m.read(stats)])) as Record<
    TriggerMetricName,
    TriggerMetric
  >;
}

/** Metrics for each trigger from the arm's stats over that trigger's own window. */
export function triggerMetricsByWindow(
  triggers: readonly TriggerSpec[],
  statsByWindowMinutes: Readonly<Record<number, ArmStats>>,
): Partial<Record<TriggerMetricName, TriggerMetric>> {
  const out: Partial<Record<TriggerMetricName, TriggerMetric>> = {};
  for (const t of triggers) {
    const stats = statsByWindowMinutes[t.windowMinutes];
    if (stats) out[t.metric] = metricNamed(t.metric).read(stats);
  }
  return out;
}

/** A value in its metric's unit, as the status output and alerts show it. */
function shown(metric: TriggerMetricName, value: number): string {
  switch (metricNamed(metric).unit) {
    case 'ms':
      return `${Math.round(value)} ms`;
    case 'usd':
      return `$${fixed(value, 4)}`;
    default:
      return fixed(value, 4);
  }
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
      reason: `${where}: ${shown(t.metric, value)} on ${sampleSize} ${t.sampleOf} (< ${t.minSample}); not judged`,
    };
  }
  const fired = t.direction === 'above' ? value > t.threshold : value < t.threshold;
  const legacy = t.legacy ? ' [legacy greater-than rule]' : '';
  return {
    ...base,
    status: fired ? 'fired' : 'ok',
    fired,
    reason: `${where}: ${shown(t.metric, value)} ${fired ? op : `not ${op}`} ${t.threshold} on ${sampleSize} ${t.sampleOf}${legacy}`,
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
