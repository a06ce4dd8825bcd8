/**
 * A kind of metric source: how the worker's config for it reads, and how it measures one query. Prometheus
 * and plain HTTP JSON are here (./prometheus.ts, ./web.ts); a Datadog or CloudWatch source is one more
 * file of this shape, listed in ./index.ts, with its provider's schema beside the others in
 * src/decision/analysis/check.ts.
 */
import type { z } from 'zod';

export interface SourceRequest {
  /** The query as the check's provider has it, placeholders filled in (PromQL; a path and query). */
  query: string;
  /** Web: where the value is in the answer; the sample's path, if any. */
  jsonPath?: string;
  sampleJsonPath?: string;
  timeoutMs: number;
}

/** A value, or why there is none (never thrown: an unreachable source is inconclusive, not an error). */
export type SourceResult = { value: number | null; error?: string; sample?: number | null };

export interface MetricSourceKind<C> {
  type: string;
  /** The worker's config of one source of this kind (zod: errors name the field). */
  config: z.ZodType<C, unknown>;
  measure(name: string, config: C, request: SourceRequest): Promise<SourceResult>;
}

export function defineSourceKind<C>(kind: MetricSourceKind<C>): MetricSourceKind<C> {
  return kind;
}

/** A short, single-line excerpt of an answer for the evidence (never more than 200 characters). */
export function excerpt(text: string): string {
  return (
    text
      // eslint-disable-next-line no-control-regex -- an answer's control characters would break the line
      .replace(/[\u0000-\u001f\u007f]+/g, ' ')
      .trim()
      .slice(0, 200)
  );
}
