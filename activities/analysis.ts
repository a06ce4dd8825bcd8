/**
 * Measuring a metric check: its query with the placeholders filled in and escaped (per arm when it names
 * `{{arm}}`), sent to the metric source the worker has under that name. Never throws for the source: an
 * unreachable source, an error answer or no data comes back as the measurement's `error`, which the
 * workflow counts as inconclusive (never as a success).
 */
import {
  renderPromql,
  renderUrlTemplate,
  isPerArm,
  sourceOf,
  type Measurement,
  type MetricCheck,
  type PlaceholderValues,
} from '../src/decision/analysis';
import { SOURCE_KINDS, loadMetricSources, type MetricSources } from '../src/control-plane/gates/sources';
import { promQuery } from '../src/control-plane/gates/sources/prometheus';

export interface MeasureRequest {
  check: MetricCheck;
  /** The placeholders' values for the arm the rollout watches (the canary, or the promoted model). */
  subject: PlaceholderValues;
  /** The stable arm's, for a per-arm check during the canary. */
  stable?: PlaceholderValues;
}

export function createAnalysisActivities(deps: { sources?: MetricSources } = {}) {
  const sources = deps.sources ?? loadMetricSources();

  async function one(check: MetricCheck, values: PlaceholderValues) {
    const name = sourceOf(check.provider);
    const config = sources.get(name);
    const kind = config ? SOURCE_KINDS.get(config.type) : undefined;
    if ('prometheus' in check.provider) {
      const { query, sampleQuery } = check.provider.prometheus;
      const rendered = renderPromql(query, values);
      if (!config || !kind || config.type !== 'prometheus')
        return { query: rendered, value: null, error: `no prometheus source '${name}' on this worker` };
      const result = await kind.measure(name, config, { query: rendered, timeoutMs: check.timeout });
      if (sampleQuery && !result.error) {
        const sample = await promQuery(
          name,
          config as never,
          renderPromql(sampleQuery, values),
          check.timeout,
        );
        return {
          query: rendered,
          ...result,
          sample: sample.value,
          error: sample.error && `sample: ${sample.error}`,
        };
      }
      return { query: rendered, ...result };
    }
    const { path, jsonPath, sampleJsonPath } = check.provider.web;
    const rendered = renderUrlTemplate(path, values);
    if (!config || !kind || config.type !== 'web')
      return { query: rendered, value: null, error: `no web source '${name}' on this worker` };
    return {
      query: rendered,
      ...(await kind.measure(name, config, {
        query: rendered,
        jsonPath,
        sampleJsonPath,
        timeoutMs: check.timeout,
      })),
    };
  }

  return {
    async measureCheck(req: MeasureRequest): Promise<Measurement> {
      const canary = await one(req.check, req.subject);
      if (!isPerArm(req.check.provider) || !req.stable) return clean(canary);
      const stable = await one(req.check, req.stable);
      return clean({
        ...canary,
        stable: stable.value,
        error: canary.error ?? (stable.error && `stable arm: ${stable.error}`),
      });
    },
  };
}

/** JSON-safe, and no `undefined` fields in the history. */
function clean(m: Measurement & { sample?: number | null }): Measurement {
  return JSON.parse(JSON.stringify(m)) as Measurement;
}
