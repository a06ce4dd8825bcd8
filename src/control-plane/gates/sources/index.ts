/**
 * The metric sources configured on the worker, by name, and the kinds they may be (one file each):
 *
 *   METRIC_SOURCES_FILE=/etc/model-rollout/metric-sources.json   (or METRIC_SOURCES='<the same JSON>')
 *   { "prom": { "type": "prometheus", "url": "http://prometheus:9090" },
 *     "metrics-api": { "type": "web", "url": "https://metrics.example.com/" } }
 *
 * A check's provider (`prometheus` or `web`) names a source of its kind.
 */
import { z } from 'zod';
import { ENDPOINT_NAME, loadNamedConfig, parseNamedConfig } from '../named-config';
import type { MetricSourceKind } from './kind';
import { prometheusSource } from './prometheus';
import { webSource } from './web';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each kind keeps its own config type
export const SOURCE_KINDS: ReadonlyMap<string, MetricSourceKind<any>> = new Map(
  [prometheusSource, webSource].map((k) => [k.type, k]),
);

const sourceSchema = z.custom<{ type: string }>().transform((input, ctx) => {
  const type = (input as { type?: unknown } | null)?.type;
  const kind = typeof type === 'string' ? SOURCE_KINDS.get(type) : undefined;
  if (!kind) {
    ctx.addIssue({ code: 'custom', message: `type must be one of ${[...SOURCE_KINDS.keys()].join(', ')}` });
    return z.NEVER;
  }
  const parsed = kind.config.safeParse(input);
  if (!parsed.success) {
    for (const issue of parsed.error.issues)
      ctx.addIssue({ ...issue, code: 'custom', message: issue.message });
    return z.NEVER;
  }
  return parsed.data as { type: string };
});

const sourcesSchema = z.record(
  z.string().regex(ENDPOINT_NAME, 'a source name is lower-case letters, digits, ".", "_" or "-"'),
  sourceSchema,
);

export type MetricSourceConfig = { type: string } & Record<string, unknown>;
export type MetricSources = ReadonlyMap<string, MetricSourceConfig>;

export function loadMetricSources(env: NodeJS.ProcessEnv = process.env): MetricSources {
  return loadNamedConfig(
    { file: 'METRIC_SOURCES_FILE', json: 'METRIC_SOURCES' },
    sourcesSchema,
    env,
  ) as MetricSources;
}

export function parseMetricSources(text: string, source = 'metric sources'): MetricSources {
  return parseNamedConfig(text, sourcesSchema, source) as MetricSources;
}
