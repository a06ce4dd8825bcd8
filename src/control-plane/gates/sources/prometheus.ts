/**
 * A Prometheus-compatible HTTP API (Prometheus, Thanos, Mimir, VictoriaMetrics): an instant query at
 * `<url>/api/v1/query`. A check's query yields one number: a scalar, or a vector of one series (an empty
 * vector is "no data"; more than one series is refused as ambiguous: aggregate it).
 *
 *   { "prom": { "type": "prometheus", "url": "http://prometheus:9090", "headers": { "authorization": "..." } } }
 */
import { z } from 'zod';
import { asNumber } from '../../../decision/analysis/json-path';
import { getJson } from './http';
import { defineSourceKind, excerpt, type SourceResult } from './kind';

const config = z.strictObject({
  type: z.literal('prometheus'),
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
  headers: z.record(z.string(), z.string()).optional(),
});

interface PromAnswer {
  status?: string;
  error?: string;
  errorType?: string;
  data?: { resultType?: string; result?: unknown };
}

export async function promQuery(
  name: string,
  c: z.output<typeof config>,
  query: string,
  timeoutMs: number,
): Promise<SourceResult> {
  const url = new URL('api/v1/query', c.url.endsWith('/') ? c.url : `${c.url}/`);
  url.searchParams.set('query', query);
  const got = await getJson(name, url, c.headers, timeoutMs);
  if ('error' in got) return { value: null, error: got.error };
  const answer = got.json as PromAnswer;
  if (answer?.status !== 'success')
    return {
      value: null,
      error: `metric source '${name}': ${answer?.errorType ?? 'error'}: ${excerpt(String(answer?.error ?? ''))}`,
    };
  const { resultType, result } = answer.data ?? {};
  if (resultType === 'scalar' && Array.isArray(result)) return { value: asNumber(result[1]) };
  if (resultType === 'vector' && Array.isArray(result)) {
    if (result.length === 0) return { value: null, error: 'no data (the query returned no series)' };
    if (result.length > 1)
      return {
        value: null,
        error: `the query returned ${result.length} series; aggregate it to one (sum, avg, max)`,
      };
    const value = asNumber((result[0] as { value?: unknown[] }).value?.[1]);
    return value === null ? { value, error: 'the series has no numeric value' } : { value };
  }
  return { value: null, error: `a ${resultType ?? 'missing'} result; a check needs a scalar or a vector` };
}

export const prometheusSource = defineSourceKind({
  type: 'prometheus',
  config,
  async measure(name, c, request) {
    return promQuery(name, c, request.query, request.timeoutMs);
  },
});
