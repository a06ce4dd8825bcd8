/**
 * The worker's side of webhook gates and metric sources, over real HTTP to servers in this test: what a
 * hook is sent and how its answers are read, and what a Prometheus-compatible API or an HTTP JSON endpoint
 * gives a check (a value, or why there is none: never an exception, never a URL in the reason).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { createAnalysisActivities } from '../activities/analysis';
import { createGateActivities } from '../activities/gates';
import { metricCheckSchema } from '../src/decision/analysis/check';
import { parseMetricSources } from '../src/control-plane/gates/sources';
import { parseWebhookGates } from '../src/control-plane/gates/webhooks';
import { freePort } from '../src/store/database';
import {
  HOOK_SECRET,
  startPrometheus,
  startWebhookServer,
  type PrometheusServer,
  type WebhookServer,
} from './helpers/gates';

const values = (route: string, arm = 'canary') => ({
  route,
  arm,
  target: 'openai:gpt-4o',
  variant: 'openai:gpt-4o',
});

describe('metric sources', () => {
  let prom: PrometheusServer;
  let api: http.Server;
  let apiUrl: string;
  const seen: Array<{ url: string; auth?: string }> = [];
  let measure: ReturnType<typeof createAnalysisActivities>['measureCheck'];

  beforeAll(async () => {
    prom = await startPrometheus();
    prom.answer((q) => {
      if (q.includes('"empty"')) return null;
      if (q.includes('"bad"')) return { error: 'parse error at char 5' };
      if (q.startsWith('count')) return 250;
      return q.includes('arm="stable"') ? 0.01 : 0.03;
    });
    api = http.createServer((req, res) => {
      seen.push({ url: req.url ?? '', auth: req.headers.authorization });
      if (req.url?.includes('/moved')) {
        res.writeHead(302, { location: 'http://elsewhere.invalid/' });
        return void res.end();
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ data: { rate: 0.5, text: 'n/a', n: '42' } }));
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}/v1`;
    const down = `http://127.0.0.1:${await freePort()}`;
    measure = createAnalysisActivities({
      sources: parseMetricSources(
        JSON.stringify({
          prom: { type: 'prometheus', url: prom.url },
          down: { type: 'prometheus', url: down },
          api: { type: 'web', url: apiUrl, headers: { authorization: 'Bearer s3cret-token' } },
        }),
      ),
    }).measureCheck;
  });
  afterAll(async () => {
    await prom?.close();
    await new Promise((r) => api?.close(r));
  });

  const promCheck = (query: string, extra: Record<string, unknown> = {}) =>
    metricCheckSchema.parse({
      name: 'c',
      provider: { prometheus: { source: 'prom', query, ...extra } },
      successCondition: 'result < 1',
    });

  it('Prometheus: one value per query, each arm with its own labels, and the sample size', async () => {
    const check = promCheck('sum(rate(e{route="{{route}}",arm="{{arm}}"}[5m]))', {
      sampleQuery: 'count(r{route="{{route}}"})',
    });
    const m = await measure({ check, subject: values('r1'), stable: values('r1', 'stable') });
    expect(m).toEqual({
      query: 'sum(rate(e{route="r1",arm="canary"}[5m]))',
      value: 0.03,
      stable: 0.01,
      sample: 250,
    });
  });

  it('Prometheus: no data, an error answer or an unreachable server is a reason, not a value', async () => {
    expect(await measure({ check: promCheck('x{route="empty"}'), subject: values('r') })).toEqual({
      query: 'x{route="empty"}',
      value: null,
      error: 'no data (the query returned no series)',
    });
    expect((await measure({ check: promCheck('x{route="bad"}'), subject: values('r') })).error).toBe(
      'metric source \'prom\' answered 400: {"status":"error","errorType":"bad_data","error":"parse error at char 5"}',
    );
    const down = metricCheckSchema.parse({
      name: 'c',
      provider: { prometheus: { source: 'down', query: 'up' } },
      successCondition: 'result < 1',
    });
    const m = await measure({ check: down, subject: values('r') });
    expect(m).toEqual({ query: 'up', value: null, error: "metric source 'down' unreachable (ECONNREFUSED)" });
    const none = metricCheckSchema.parse({
      name: 'c',
      provider: { prometheus: { source: 'nope', query: 'up' } },
      successCondition: 'result < 1',
    });
    expect((await measure({ check: none, subject: values('r') })).error).toBe(
      "no prometheus source 'nope' on this worker",
    );
  });

  it('HTTP JSON: the value at the path, placeholders percent-encoded, the headers sent, redirects not followed', async () => {
    const web = (path: string, jsonPath: string) =>
      metricCheckSchema.parse({
        name: 'w',
        provider: { web: { source: 'api', path, jsonPath, sampleJsonPath: '$.data.n' } },
        successCondition: 'result < 1',
      });
    const m = await measure({
      check: web('/metrics?route={{route}}', '$.data.rate'),
      subject: values('a&b=c'),
    });
    expect(m).toEqual({ query: '/metrics?route=a%26b%3Dc', value: 0.5, sample: 42 });
    expect(seen.at(-1)).toEqual({ url: '/v1/metrics?route=a%26b%3Dc', auth: 'Bearer s3cret-token' });
    expect((await measure({ check: web('/m', '$.data.text'), subject: values('r') })).error).toBe(
      'not a number at $.data.text',
    );
    expect((await measure({ check: web('/m', '$.data.nothing'), subject: values('r') })).error).toBe(
      'nothing at $.data.nothing in the answer',
    );
    expect((await measure({ check: web('/moved', '$'), subject: values('r') })).error).toBe(
      "metric source 'api' answered 302: ",
    );
  });

  it('a bad sources file is refused naming the field, never a value', () => {
    expect(() =>
      parseMetricSources(JSON.stringify({ prom: { type: 'graphite', url: 'http://x' } }), 'METRIC_SOURCES'),
    ).toThrow('METRIC_SOURCES: prom: type must be one of prometheus, web');
    expect(() =>
      parseMetricSources(JSON.stringify({ 'Bad Name': { type: 'web', url: 'http://x' } }), 'METRIC_SOURCES'),
    ).toThrow('METRIC_SOURCES: Bad Name: a name is lower-case letters, digits, ".", "_" or "-"');
    expect(() =>
      parseWebhookGates(JSON.stringify({ g: { url: 'http://x', secret: 'short' } }), 'WEBHOOK_GATES'),
    ).toThrow('WEBHOOK_GATES: g.secret: the HMAC secret must be at least 16 characters');
  });
});

describe('webhook calls', () => {
  let hooks: WebhookServer;
  let callHook: ReturnType<typeof createGateActivities>['callHook'];
  const payload = (hook: string) => ({
    hook,
    type: 'confirm-promotion' as const,
    rollout: { route: 'r', shareBps: 500, candidate: 'openai:gpt-4o' },
  });
  beforeAll(async () => {
    hooks = await startWebhookServer();
    const down = `http://127.0.0.1:${await freePort()}`;
    callHook = createGateActivities({
      hooks: parseWebhookGates(
        JSON.stringify({ ...hooks.gates('ok', 'no', 'busy'), down: { url: down, secret: HOOK_SECRET } }),
      ),
    }).callHook;
  });
  afterAll(() => hooks?.close());

  it("2xx is yes, another answer is no with the start of its body; busy or failing hooks throw for Temporal's retry", async () => {
    hooks.reply('no', { status: 403, body: 'frozen\n' + 'x'.repeat(500) });
    hooks.reply('busy', { status: 503 });
    expect(await callHook(payload('ok'))).toEqual({ ok: true, status: 200, answer: '' });
    const no = await callHook(payload('no'));
    expect(no).toMatchObject({ ok: false, status: 403 });
    expect(no.answer).toHaveLength(200);
    expect(no.answer.startsWith('frozen x')).toBe(true);
    await expect(callHook(payload('busy'))).rejects.toThrow("webhook 'busy' answered 503");
    const down = await callHook(payload('down')).catch((e: Error) => e);
    expect((down as Error).message).toBe("webhook 'down' did not answer (ECONNREFUSED)");
    expect(hooks.requests().every((r) => r.signed)).toBe(true);
    expect(hooks.requests('ok')[0].json).toMatchObject(payload('ok'));
  });

  it('a hook the worker does not have is refused without retry, naming it (or not repeating a URL)', async () => {
    const unknown = await callHook(payload('nope')).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(ApplicationFailure);
    expect(unknown).toMatchObject({ nonRetryable: true, type: 'UnknownWebhook' });
    expect((unknown as Error).message).toMatch(
      /^unknown webhook 'nope': this worker has 'ok', 'no', 'busy', 'down'/,
    );
    const url = await callHook(payload(`${hooks.url}/ok`)).catch((e: Error) => e);
    expect((url as Error).message).toMatch(/^unknown webhook \(a URL, not a hook name\)/);
    expect((url as Error).message).not.toContain(hooks.url);
  });
});
