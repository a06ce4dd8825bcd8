/**
 * A metric: one signal the decision can read, defined once. The rollback triggers (policy/triggers.ts), the
 * spec's `triggers.thresholds` schema (config/rollout-spec.ts), the trigger windows (workflows/triggers.ts)
 * and the status output are built from the registry (index.ts), so a new metric is one file here, one line
 * in the index and its test; nothing else names the metrics one by one.
 */
import type { z } from 'zod';
import type { ArmStats } from '../policy/types';

/** One metric of one arm over one window, with the sample it stands on. */
export interface MetricReading {
  value: number | null;
  requests: number;
  scores: number;
}

export interface MetricDefinition<N extends string = string> {
  /** The name a spec's `triggers.thresholds` and a trigger's reason use (snake_case). */
  name: N;
  /** One line for people: what it measures. */
  description: string;
  unit: 'ratio' | 'ms' | 'usd' | 'score';
  /** Which way is bad: 'above' fires when the value is above the threshold, 'below' when under it. */
  direction: 'above' | 'below';
  /** What the trigger's minimum sample counts: requests (triggers.minRequests) or scores (minScores). */
  sampleOf: 'requests' | 'scores';
  /** The trigger's window: 'short' (15 min; `triggers.windowMinutes.short`) or 'long' (60 min). */
  window: 'short' | 'long';
  /** The trigger's threshold when the spec gives none; absent: no trigger unless the spec sets one. */
  defaultThreshold?: number;
  /** What a spec may set as the threshold (zod, at the spec's boundary). */
  threshold: z.ZodType<number>;
  /** The value from one arm's windowed statistics (null when there is nothing to read). */
  read(stats: ArmStats): MetricReading;
}

/** Windows in minutes of 'short' and 'long' (the seed's). */
export const DEFAULT_WINDOWS = Object.freeze({ short: 15, long: 60 });

/** Identity with the name kept as a literal type, so the registry knows its names. */
export function defineMetric<const N extends string>(metric: MetricDefinition<N>): MetricDefinition<N> {
  return metric;
}

const usable = (x: number | null | undefined): number | null =>
  typeof x === 'number' && Number.isFinite(x) ? x : null;

/** A count that is finite and positive, else 0. */
export const nonNegative = (x: number | null | undefined) =>
  typeof x === 'number' && Number.isFinite(x) && x > 0 ? x : 0;

/** `part / whole` over the served requests of `stats` (null without requests). */
export function perRequest(stats: ArmStats, part: number | undefined): MetricReading {
  const requests = nonNegative(stats.requests);
  const scores = nonNegative(stats.scored);
  return { value: requests > 0 ? usable(nonNegative(part) / requests) : null, requests, scores };
}

export { usable };
