/**
 * A plain HTTP JSON endpoint: a GET of the check's path (and query) on the source's URL, and the value at
 * its `jsonPath` in the answer (src/decision/analysis/json-path.ts).
 *
 *   { "metrics-api": { "type": "web", "url": "https://metrics.example.com/", "headers": { ... } } }
 */
import { z } from 'zod';
import { asNumber, readJsonPath } from '../../../decision/analysis/json-path';
import { getJson } from './http';
import { defineSourceKind } from './kind';

const config = z.strictObject({
  type: z.literal('web'),
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
  headers: z.record(z.string(), z.string()).optional(),
});

export const webSource = defineSourceKind({
  type: 'web',
  config,
  async measure(name, c, request) {
    const base = new URL(c.url);
    // The check's path is joined to the source's; it can never name another host.
    const url = new URL(base.pathname.replace(/\/$/, '') + request.query, base.origin);
    if (url.origin !== base.origin) return { value: null, error: 'the path leaves the source' };
    const got = await getJson(name, url, c.headers, request.timeoutMs);
    if ('error' in got) return { value: null, error: got.error };
    const raw = readJsonPath(got.json, request.jsonPath ?? '$');
    const value = asNumber(raw);
    const sample = request.sampleJsonPath
      ? asNumber(readJsonPath(got.json, request.sampleJsonPath))
      : undefined;
    if (value === null)
      return {
        value,
        sample,
        error:
          raw === undefined
            ? `nothing at ${request.jsonPath} in the answer`
            : `not a number at ${request.jsonPath}`,
      };
    return { value, sample };
  },
});
