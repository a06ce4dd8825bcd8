/**
 * A metric check, in the shape of Argo Rollouts' AnalysisTemplate metric: where the value comes from
 * (`provider`: a Prometheus query, or a path into an HTTP JSON endpoint, each against a source configured
 * by name on the worker), a `successCondition` and optionally a `failureCondition` (between the two lies
 * the inconclusive band), an `interval`, a `failureLimit` (failed measurements allowed before the check
 * fails) and a minimum sample. A query that uses `{{arm}}` is measured once per arm and its conditions
 * compare them (`canary <= stable * 1.1`; `result` is the canary's value).
 *
 * Pure code: the spec validates checks with it; the workflow assesses each measurement with it.
 */
import { z } from 'zod';
import { durationSchema } from '../config/duration-schema';
import { parseCondition, type Condition } from './condition';
import { checkPromqlTemplate, placeholdersOf } from './placeholders';

export const CHECK_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const sourceName = z
  .string()
  .regex(CHECK_NAME, 'a metric source configured on the worker (METRIC_SOURCES_FILE), by name, not a URL');

const promql = z
  .string()
  .min(1)
  .max(4000)
  .superRefine((q, ctx) => {
    try {
      checkPromqlTemplate(q);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

/** `$.data.value`, `$.items[0].rate`, `$['a key'].x`: a dotted path with indexes (./json-path.ts). */
const jsonPath = z
  .string()
  .max(300)
  .regex(/^\$?(\.[A-Za-z_][\w-]*|\[\d+\]|\['[^']*'\])*$/, "a path such as $.data.value or $.items[0]['p95']");

const urlTemplate = z
  .string()
  .max(2000)
  .regex(/^\/[^\s#]*$/, 'a path (and query) on the source, starting with "/"; the host is the source\'s')
  .superRefine((path, ctx) => {
    try {
      placeholdersOf(path);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

export const providerSchema = z.union(
  [
    z.strictObject({
      prometheus: z.strictObject({
        source: sourceName,
        /** PromQL for one number (a one-series vector or a scalar), with placeholders in quoted strings. */
        query: promql,
        /** PromQL for the sample size behind it (e.g. requests in the window), for `minSample`. */
        sampleQuery: promql.optional(),
      }),
    }),
    z.strictObject({
      web: z.strictObject({
        source: sourceName,
        path: urlTemplate,
        jsonPath: jsonPath.default('$'),
        sampleJsonPath: jsonPath.optional(),
      }),
    }),
  ],
  { error: 'provider is { "prometheus": { source, query } } or { "web": { source, path, jsonPath } }' },
);

export type MetricProvider = z.output<typeof providerSchema>;

export const metricCheckSchema = z
  .strictObject({
    name: z.string().regex(CHECK_NAME, 'a check name: lower-case letters, digits, ".", "_", "-"'),
    provider: providerSchema,
    /** When a measurement is a success, e.g. `result < 0.05`. */
    successCondition: z.string(),
    /** When it is a failure; a measurement that is neither is inconclusive. Default: not a success. */
    failureCondition: z.string().optional(),
    interval: durationSchema('1m').refine((ms) => ms > 0, 'must be longer than 0'),
    /** Failed measurements allowed; one more fails the check (Argo's failureLimit). */
    failureLimit: z.number().int().min(0).default(0),
    /** Below this sample size (the provider's sampleQuery/sampleJsonPath) a measurement is inconclusive. */
    minSample: z.number().min(0).default(0),
    /** Per request to the source. */
    timeout: durationSchema('10s').refine((ms) => ms > 0 && ms <= 120_000, 'between 1ms and 2m'),
  })
  .superRefine((check, ctx) => {
    const allowed = conditionVars(check.provider);
    for (const key of ['successCondition', 'failureCondition'] as const) {
      const text = check[key];
      if (text === undefined) continue;
      try {
        parseCondition(text, allowed);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: [key], message: (err as Error).message });
      }
    }
    const p = 'prometheus' in check.provider ? check.provider.prometheus : undefined;
    const w = 'web' in check.provider ? check.provider.web : undefined;
    if (check.minSample > 0 && !p?.sampleQuery && !w?.sampleJsonPath)
      ctx.addIssue({
        code: 'custom',
        path: ['minSample'],
        message: 'needs the sample size: provider.prometheus.sampleQuery or provider.web.sampleJsonPath',
      });
  });

export type MetricCheck = z.output<typeof metricCheckSchema>;

/** The query text a check's provider sends, with its placeholders (for `{{arm}}` detection and evidence). */
export function queryOf(provider: MetricProvider): string {
  return 'prometheus' in provider ? provider.prometheus.query : provider.web.path;
}

export function sourceOf(provider: MetricProvider): string {
  return 'prometheus' in provider ? provider.prometheus.source : provider.web.source;
}

/** A check whose query names `{{arm}}` is measured per arm and compares them. */
export function isPerArm(provider: MetricProvider): boolean {
  return placeholdersOf(queryOf(provider)).includes('arm');
}

function conditionVars(provider: MetricProvider): string[] {
  return isPerArm(provider) ? ['result', 'stable', 'canary'] : ['result'];
}

/** One measurement, as the activity returns it: the value (per arm: both), the sample, or why not. */
export interface Measurement {
  /** The query as sent (placeholders filled in), for the evidence. Per arm: the canary's. */
  query: string;
  value: number | null;
  stable?: number | null;
  sample?: number | null;
  /** Why there is no value: the source was unreachable, answered an error, or had no data. */
  error?: string;
}

export type MeasurementOutcome = 'success' | 'failure' | 'inconclusive';

export interface Assessment {
  outcome: MeasurementOutcome;
  /** One line: the value against the condition, or why it is inconclusive. */
  reason: string;
}

const conditions = new Map<string, Condition>();
function compiled(text: string, provider: MetricProvider): Condition {
  const key = `${isPerArm(provider)}\u0000${text}`;
  let c = conditions.get(key);
  if (!c) {
    c = parseCondition(text, conditionVars(provider));
    conditions.set(key, c);
  }
  return c;
}

const show = (v: number | null | undefined) => (v === null || v === undefined ? 'none' : String(v));

/** A measurement against the check's conditions. A missing value is inconclusive, never a success. */
export function assess(check: MetricCheck, m: Measurement): Assessment {
  if (m.error) return { outcome: 'inconclusive', reason: `${check.name}: inconclusive: ${m.error}` };
  if (check.minSample > 0 && !((m.sample ?? 0) >= check.minSample))
    return {
      outcome: 'inconclusive',
      reason: `${check.name}: inconclusive: sample ${show(m.sample)} below minSample ${check.minSample}`,
    };
  const perArm = isPerArm(check.provider);
  const vars = perArm ? { result: m.value, canary: m.value, stable: m.stable } : { result: m.value };
  const values = perArm ? `canary ${show(m.value)}, stable ${show(m.stable)}` : `result ${show(m.value)}`;
  if (check.failureCondition !== undefined) {
    const failed = compiled(check.failureCondition, check.provider).evaluate(vars);
    if (failed === true)
      return { outcome: 'failure', reason: `${check.name}: ${values} meets ${check.failureCondition}` };
  }
  const ok = compiled(check.successCondition, check.provider).evaluate(vars);
  if (ok === null)
    return { outcome: 'inconclusive', reason: `${check.name}: inconclusive: no value (${values})` };
  if (ok) return { outcome: 'success', reason: `${check.name}: ${values} meets ${check.successCondition}` };
  if (check.failureCondition !== undefined)
    return {
      outcome: 'inconclusive',
      reason: `${check.name}: inconclusive: ${values} meets neither ${check.successCondition} nor ${check.failureCondition}`,
    };
  return { outcome: 'failure', reason: `${check.name}: ${values} fails ${check.successCondition}` };
}
