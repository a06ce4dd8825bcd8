/**
 * Webhook gates and metric analysis end to end: real dev server, real Postgres, the simulator behind the
 * real SDKs, a router serving live traffic, and a Prometheus-compatible API in the test that answers from
 * that router's own `/metrics` counters (model_rollout_requests_total by route, tag, outcome), so the
 * checks measure the traffic the rollout moved. The worker reads its hooks and sources from the
 * environment (WEBHOOK_GATES, METRIC_SOURCES), as a deployed worker does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusQuery } from '../workflows/messages';
import type { RolloutSpecInput } from '../src/decision/config/rollout-spec';
import { getRoute } from '../src/store/routing-state';
import { startTestStack, type TestStack } from './helpers/stack';
import { rolloutSpec, saveHistory, startRollout, waitForStatus } from './helpers/rollout';
import {
  startPrometheus,
  startWebhookServer,
  type PrometheusServer,
  type WebhookServer,
} from './helpers/gates';
import { queryNames, type Selector } from './helpers/promql';

describe('webhook gates and metric analysis on served traffic', () => {
  let stack: TestStack;
  let hooks: WebhookServer;
  let prom: PrometheusServer;

  beforeAll(async () => {
    hooks = await startWebhookServer();
    prom = await startPrometheus();
    // sum(metric{matchers}) or a ratio of two such sums, over the router's real counters; as in
    // Prometheus, the sum of no series is no data unless the query says `or vector(0)`.
    prom.answer(async (query) => {
      const zero = query.includes('or vector(0)');
      const sums = (await Promise.all(queryNames(query).selectors.map(sumOf))).map((s, i) =>
        s === null && zero && i === 0 ? 0 : s,
      );
      if (sums.some((s) => s === null)) return null;
      return sums.length === 2 ? sums[0]! / sums[1]! : sums[0]!;
    });
    process.env.WEBHOOK_GATES = JSON.stringify(hooks.gates('release-gate'));
    process.env.METRIC_SOURCES = JSON.stringify({ prom: { type: 'prometheus', url: prom.url } });
    stack = await startTestStack({
      // Answers in hundreds of ms, as real models give them: a millisecond of overhead on one arm must not
      // read as a slower candidate.
      default: { latencyMs: { median: 250, p99: 800 }, accuracy: 0.95 },
      models: {
        'claude-sonnet-4': { accuracy: 0.95 },
        'gpt-4o': { accuracy: 0.95 },
        'broken-model': { accuracy: 0.95, errorRate: 1, errorKinds: { server_error: 1 } },
      },
    });
  });
  afterAll(async () => {
    await stack?.close();
    await hooks?.close();
    await prom?.close();
    delete process.env.WEBHOOK_GATES;
    delete process.env.METRIC_SOURCES;
  });

  async function sumOf(sel: Selector): Promise<number | null> {
    const metrics = await stack.router.metrics.registry.getMetricsAsJSON();
    const values = (metrics.find((m) => m.name === sel.metric)?.values ?? []).filter((v) =>
      sel.matchers.every((m) => {
        const label = String((v.labels as Record<string, unknown>)[m.label] ?? '');
        return m.op === '=' ? label === m.value : m.op === '!=' ? label !== m.value : false;
      }),
    );
    return values.length ? values.reduce((s, v) => s + v.value, 0) : null;
  }

  // The candidate's error ratio against stable's, per arm: the gateway labels the arm `tag`.
  const errorRatio = {
    name: 'error-ratio',
    provider: {
      prometheus: {
        source: 'prom',
        query:
          '(sum(model_rollout_requests_total{route="{{route}}",tag="{{arm}}",outcome!="ok"}) or vector(0)) / sum(model_rollout_requests_total{route="{{route}}",tag="{{arm}}"})',
        sampleQuery: 'sum(model_rollout_requests_total{route="{{route}}",tag="{{arm}}"})',
      },
    },
    successCondition: 'canary <= stable + 0.02',
    interval: '1s',
    minSample: 20,
  };
  const spec = (route: string, candidate: string): RolloutSpecInput =>
    rolloutSpec(route, {
      candidate,
      canary: { steps: [5000, 10_000] },
      // The triggers stay out of it: what rolls back here is the analysis.
      triggers: { interval: '1s', minRequests: 20, minScores: 10, thresholds: { error_rate: 1 } },
      webhooks: [{ type: 'confirm-promotion', hook: 'release-gate', interval: '1s' }],
      analysis: { checks: [errorRatio], during: ['canary'] },
    });

  it('a candidate as good as stable passes its analysis, waits for the confirm-promotion hook, and completes', async () => {
    const route = 'gates-e2e-good';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 100);
    hooks.reply('release-gate', { status: 403, body: 'waiting for the release manager' });
    const handle = await startRollout(stack.client, stack.env.taskQueue, route, spec(route, 'openai:gpt-4o'));
    const held = await waitForStatus(handle, (s) => s.gate?.state === 'refused', 120_000);
    expect(held).toMatchObject({ shareBps: 5000, gate: { hook: 'release-gate', lastStatus: 403 } });
    // The step got there on real statistics and a passing check of the served traffic.
    const check = held.analysis!.background[0];
    expect(check).toMatchObject({ name: 'error-ratio', verdict: 'ok' });
    expect(check.last).toMatchObject({ value: 0, stable: 0, outcome: 'success' });
    expect(check.last!.sample).toBeGreaterThanOrEqual(20);
    expect(
      held.decisions.some((d) =>
        d.reasons.some((r) => r.startsWith('analysis error-ratio: canary 0, stable 0 meets')),
      ),
    ).toBe(true);
    hooks.reply('release-gate', { status: 200 });
    const outcome = await handle.result();
    await traffic.stop();
    expect(outcome.result).toBe('completed');
    expect(await getRoute(stack.db.pool, route)).toMatchObject({
      stableSlot: 'green',
      canaryBps: 0,
      owner: null,
    });
    const served = traffic.stats().byTarget['openai:gpt-4o'];
    expect(served).toBeGreaterThan(0);
    await saveHistory(stack.client, handle.workflowId, undefined);
  }, 180_000);

  it('a candidate that fails its requests is rolled back by the analysis, with the query and its value', async () => {
    const route = 'gates-e2e-broken';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 100);
    const handle = await startRollout(
      stack.client,
      stack.env.taskQueue,
      route,
      spec(route, 'openai:broken-model'),
    );
    const outcome = await handle.result();
    await traffic.stop();
    expect(outcome.result).toBe('rolled_back');
    expect(outcome.reason).toMatch(
      /^analysis check error-ratio: canary 1, stable 0 fails canary <= stable \+ 0\.02/,
    );
    expect(outcome.evidence).toMatchObject({
      analysis: {
        check: 'error-ratio',
        value: 1,
        stable: 0,
        query: `(sum(model_rollout_requests_total{route="${route}",tag="canary",outcome!="ok"}) or vector(0)) / sum(model_rollout_requests_total{route="${route}",tag="canary"})`,
      },
    });
    expect(await getRoute(stack.db.pool, route)).toMatchObject({
      stableSlot: 'blue',
      canaryBps: 0,
      owner: null,
    });
    const decisions = await stack.db.pool.query(
      `SELECT action, policy, stats FROM rollout_decisions WHERE route = $1 ORDER BY id DESC LIMIT 1`,
      [route],
    );
    expect(decisions.rows[0]).toMatchObject({
      action: 'rollback',
      policy: 'analysis',
      stats: { check: 'error-ratio', value: 1 },
    });
    expect((await handle.query(statusQuery)).steps.map((s) => s.toBps)).toEqual([5000]);
    await saveHistory(stack.client, handle.workflowId, undefined);
  }, 180_000);
});
