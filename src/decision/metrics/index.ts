/**
 * The metric registry: every signal the triggers, the spec's thresholds and the status output know of.
 *
 * To add a metric: write `src/decision/metrics/<name>.ts` with `defineMetric` (see metric.ts for the fields),
 * add it to the list below, and test it (test/unit/metrics.test.ts reads every entry). Nothing else lists
 * metrics: the spec's `triggers.thresholds` accepts the new name, its trigger is built with its window,
 * direction and minimum sample, and `status` shows it.
 */
import { attemptErrorRate } from './attempt-error-rate';
import { avgQualityScore } from './avg-quality-score';
import { costPerRequest } from './cost-per-request';
import { errorRate } from './error-rate';
import type { MetricDefinition } from './metric';
import { p95LatencyMs } from './p95-latency-ms';
import { refusalRate } from './refusal-rate';

/** In trigger order: the seed's four first (their triggers keep their places), then the later ones. */
export const METRICS = [
  errorRate,
  avgQualityScore,
  p95LatencyMs,
  costPerRequest,
  refusalRate,
  attemptErrorRate,
] as const;

export type MetricName = (typeof METRICS)[number]['name'];

export const METRIC_NAMES: readonly MetricName[] = METRICS.map((m) => m.name);

const BY_NAME = new Map<string, MetricDefinition>(METRICS.map((m) => [m.name, m]));

/** The metric of that name; throws naming the known ones for any other. */
export function metricNamed(name: string): MetricDefinition<MetricName> {
  const m = BY_NAME.get(name);
  if (!m) throw new Error(`unknown metric '${name}' (known: ${METRIC_NAMES.join(', ')})`);
  return m as MetricDefinition<MetricName>;
}

export * from './metric';
