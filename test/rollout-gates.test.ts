/**
 * Webhook gates and external metric analysis, in the fast workflow layer: the real rollout workflow on the
 * real Temporal dev server with scripted statistics and routing (test/helpers/scripted-activities.ts), and
 * the real webhook and metric activities posting to a webhook receiver and a Prometheus-compatible API
 * served here. The end-to-end story with served traffic is in rollout-gates-e2e.test.ts. Its histories are
 * replay fixtures too: RECORD_HISTORIES=1 npx vitest run test/rollout-gates.test.ts.
 */
import { stripVTControlCharacters } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { parseAlertChannels } from '../src/control-plane/alerts/channels';
import { parseMetricSources } from '../src/control-plane/gates/sources';
import { parseWebhookGates } from '../src/control-plane/gates/webhooks';
import { freePort } from '../src/store/database';
import type { RolloutSpecInput } from '../src/decision/config/rollout-spec';
import type { RunningWorker } from '../src/control-plane/temporal/worker';
import { pauseUpdate, resumeUpdate, rollbackUpdate, statusQuery } from '../workflows/messages';
import { rolloutWorkflow } from '../workflows';
import { temporalTestEnv } from './helpers/temporal';
import { arm, scriptedWorld, type ScriptedWorld } from './helpers/scripted-activities';
import {
  saveHistory,
  startAlertHook,
  startRollout,
  until,
  waitForStatus,
  type AlertHook,
} from './helpers/rollout';
import {
  HOOK_SECRET,
  startPrometheus,
  startWebhookServer,
  type PrometheusServer,
  type WebhookServer,
} from './helpers/gates';
import { queryNames } from './helpers/promql';
import { renderGates } from '../src/cli/commands/status-gates';

describe.concurrent('webhook gates and metric analysis (scripted statistics, real dev server)', () => {
  const env = temporalTestEnv();
  let client: Client;
  let worker: RunningWorker;
  let world: ScriptedWorld;
  let alerts: AlertHook;
  let hooks: WebhookServer;
  let prom: PrometheusServer;

  beforeAll(async () => {
    alerts = await startAlertHook();
    hooks = await startWebhookServer();
    prom = await startPrometheus();
    const down = `http://127.0.0.1:${await freePort()}`; // nothing listens there
    world = scriptedWorld({
      alertChannels: parseAlertChannels(JSON.stringify(alerts.channels)),
      webhookGates: parseWebhookGates(
        JSON.stringify(
          hooks.gates('release-gate', 'load-test', 'slow', 'slower', 'audit', 'kill-switch', 'cleanup'),
        ),
      ),
      metricSources: parseMetricSources(
        JSON.stringify({
          prom: { type: 'prometheus', url: prom.url },
          'prom-down': { type: 'prometheus', url: down },
        }),
      ),
    });
    client = await env.client();
    worker = await env.worker(world.activities);
  });
  afterAll(async () => {
    await hooks?.close(); // first: a hanging hook's request ends, so the worker can stop at once
    await worker?.shutdown();
    await client?.connection.close();
    await alerts?.close();
    await prom?.close();
  });

  function spec(route: string, extra: Partial<RolloutSpecInput> = {}): RolloutSpecInput {
    return {
      route,
      candidate: 'openai:gpt-4o',
      actor: 'test',
      evaluation: { interval: '100ms' },
      triggers: { interval: '100ms' },
      bake: { duration: '300ms' },
      alerts: { channels: ['test-hook'] },
      policy: { sequential: { finalGate: { toleranceRel: 0.1 } } },
      canary: { steps: [5000, 10_000] },
      ...extra,
    } as RolloutSpecInput;
  }
  const start = (route: string, s: RolloutSpecInput) => {
    if (!world.routes.has(route)) world.createRoute(route);
    return startRollout(client, env.taskQueue, route, s);
  };
  const kinds = (route: string) => alerts.alertsOf(route).map((a) => a.kind);
  const holding = () => ({ stable: arm(2000, 4.8), canary: arm(20, 4.8) });
  const details = async (handle: { query: (name: string) => Promise<unknown> }) =>
    ((await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string }).currentDetails ??
    '';

  it('a confirm-promotion hook that answers 403 holds the rollout at its share; 200 lets it through', async () => {
    const route = 'gate-confirm';
    hooks.reply('release-gate', { status: 403, body: 'change freeze until 14:00' });
    const handle = await start(
      route,
      spec(route, { webhooks: [{ type: 'confirm-promotion', hook: 'release-gate', interval: '200ms' }] }),
    );
    const held = await waitForStatus(handle, (s) => s.gate?.state === 'refused' && s.gate.asked >= 3);
    expect(held).toMatchObject({
      shareBps: 5000,
      phase: 'awaiting-webhook',
      step: {
        kind: 'webhook',
        description: "confirm-promotion 'release-gate' (a refusal holds, asked every 200ms)",
      },
      gate: {
        hook: 'release-gate',
        type: 'confirm-promotion',
        lastStatus: 403,
        lastAnswer: 'change freeze until 14:00',
      },
    });
    expect(held.steps.map((s) => s.toBps)).toEqual([5000]);
    expect(held.decisions.find((d) => d.policy === 'webhook')?.reasons[0]).toBe(
      "confirm-promotion webhook 'release-gate' answered 403: change freeze until 14:00",
    );
    expect(await details(handle)).toMatch(
      /\*\*held by webhook 'release-gate'\*\* \(confirm-promotion\) since .*: answered 403/,
    );
    // `model-rollout status` says it too.
    const cli = stripVTControlCharacters(renderGates(held).join('\n'));
    expect(cli).toMatch(/webhook {2}held for 'release-gate' \(confirm-promotion\) since .* asked \d+x/);
    expect(cli).toContain('last: answered 403: change freeze until 14:00');
    // Paused by a person, the gate is not passed even once the hook says yes; a resume lets it through.
    await handle.executeUpdate(pauseUpdate, { args: [{ actor: 'ops', reason: 'look first' }] });
    hooks.reply('release-gate', { status: 200, body: 'go' });
    await new Promise((r) => setTimeout(r, 1000));
    expect(await handle.query(statusQuery)).toMatchObject({
      paused: true,
      shareBps: 5000,
      step: { kind: 'webhook' },
    });
    await handle.executeUpdate(resumeUpdate, { args: [{ actor: 'ops' }] });
    const outcome = await handle.result();
    expect(outcome).toMatchObject({ result: 'completed', stable: 'openai:gpt-4o' });
    expect((await handle.query(statusQuery)).steps.map((s) => s.toBps)).toEqual([5000, 10_000]);
    // One held alert for the whole refusal, whatever the number of asks.
    expect(kinds(route).filter((k) => k === 'webhook')).toHaveLength(1);
    expect(kinds(route)).toEqual(['webhook', 'pause', 'resume', 'promotion', 'completed']);
    // Every POST is signed with the hook's secret and carries the rollout's state, no URL and no secret.
    const sent = hooks.requests('release-gate').filter((r) => r.json.rollout.route === route);
    expect(sent.length).toBeGreaterThanOrEqual(4);
    for (const r of sent) {
      expect(r.signed).toBe(true);
      expect(r.json).toMatchObject({
        hook: 'release-gate',
        type: 'confirm-promotion',
        rollout: { route, shareBps: 5000, candidate: 'openai:gpt-4o', step: { kind: 'webhook' } },
      });
      for (const secret of [HOOK_SECRET, hooks.url, alerts.url, prom.url, '127.0.0.1'])
        expect(r.body).not.toContain(secret);
    }
    await saveHistory(client, handle.workflowId, undefined, 'webhook-confirm-held-then-passed');
  }, 60_000);

  it('a hook that hangs is timed out and retried by Temporal, and a rollback meanwhile goes through at once', async () => {
    // Timed out per attempt and retried: three attempts of one call (one delivery id), then a refusal.
    const retried = 'gate-hang-retried';
    hooks.reply('slow', 'hang');
    const h1 = await start(retried, {
      ...spec(retried),
      canary: undefined,
      bake: undefined,
      steps: [
        { webhook: { hook: 'slow', timeout: '300ms', retries: 2, interval: '1h' } },
        { setShare: 10_000 },
      ],
    } as RolloutSpecInput);
    const refused = await waitForStatus(h1, (s) => s.gate?.state === 'refused');
    expect(refused.gate?.lastAnswer).toBe("webhook 'slow' did not answer (timeout) (after 3 attempt(s))");
    const calls = hooks.requests('slow').filter((r) => r.json.rollout.route === retried);
    expect(calls).toHaveLength(3);
    expect(new Set(calls.map((c) => c.delivery)).size).toBe(1);
    await h1.executeUpdate(rollbackUpdate, { args: [{ reason: 'test over' }] });

    // A hook that would take 5 minutes: the rollback answers while its request is still open.
    const route = 'gate-hang-rollback';
    hooks.reply('slower', 'hang');
    const handle = await start(route, {
      ...spec(route),
      canary: undefined,
      bake: undefined,
      steps: [
        { setShare: 1000 },
        { webhook: { hook: 'slower', timeout: '5m', retries: 0 } },
        { setShare: 10_000 },
      ],
    } as RolloutSpecInput);
    await until(
      () => hooks.requests('slower').some((r) => r.json.rollout.route === route && r.open),
      'the hook to be called',
    );
    const asking = await handle.query(statusQuery);
    expect(asking.gate).toMatchObject({ hook: 'slower', state: 'asking' });
    expect(await details(handle)).toContain("**waits for webhook 'slower'** (gate), asked 1 time(s)");
    const t0 = Date.now();
    const outcome = await handle.executeUpdate(rollbackUpdate, {
      args: [{ reason: 'bad answers', actor: 'ops' }],
    });
    const ms = Date.now() - t0;
    expect(outcome).toMatchObject({
      result: 'rolled_back',
      reason: 'bad answers (by ops)',
      finalShareBps: 0,
    });
    expect(world.routes.get(route)).toMatchObject({ stableSlot: 'blue', canaryBps: 0, owner: null });
    expect(hooks.requests('slower').filter((r) => r.json.rollout.route === route && r.open)).toHaveLength(1);
    console.log(`[gates] rollback while a webhook hangs: answered in ${ms} ms (the hook's timeout is 5 min)`);
    await saveHistory(client, handle.workflowId, undefined, 'webhook-hanging-rolled-back');
  }, 60_000);

  it('a pre-rollout refusal rolls back before traffic moves; a hook unknown to the worker is refused by name', async () => {
    const route = 'gate-pre-rollout';
    hooks.reply('load-test', { status: 412, body: 'load test failed: p99 2.3s' });
    const handle = await start(
      route,
      spec(route, { webhooks: [{ type: 'pre-rollout', hook: 'load-test' }] }),
    );
    const outcome = await handle.result();
    expect(outcome).toMatchObject({
      result: 'rolled_back',
      reason: "pre-rollout webhook 'load-test' answered 412: load test failed: p99 2.3s (by webhook)",
      evidence: { hook: 'load-test', status: 412 },
    });
    expect((await handle.query(statusQuery)).steps).toEqual([]);

    const unknown = 'gate-unknown';
    world.createRoute(unknown);
    const error = await client.workflow
      .execute(rolloutWorkflow, {
        taskQueue: env.taskQueue,
        workflowId: `rollout-${unknown}`,
        args: [spec(unknown, { webhooks: [{ type: 'event', hook: 'no-such-hook' }] })],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(String((error as WorkflowFailedError).cause?.message)).toMatch(
      /^webhook 'no-such-hook' is not configured on the worker \(it has 'release-gate', .*; WEBHOOK_GATES_FILE\)$/,
    );
    expect(world.routes.get(unknown)).toMatchObject({ owner: null, changes: [] });
  }, 60_000);

  it('the event stream gets steps, decisions and the outcome; a rollback hook answering 2xx rolls back; post-rollout is told', async () => {
    const route = 'gate-rollback-hook';
    world.scripts.set(route, { step: holding });
    hooks.reply('kill-switch', { status: 404 });
    const handle = await start(
      route,
      spec(route, {
        webhooks: [
          { type: 'event', hook: 'audit' },
          { type: 'rollback', hook: 'kill-switch' },
          { type: 'post-rollout', hook: 'cleanup' },
        ],
      }),
    );
    await waitForStatus(handle, (s) => s.shareBps === 5000 && s.decisions.length >= 3);
    hooks.reply('kill-switch', { status: 200, body: 'incident 4711' });
    const outcome = await handle.result();
    expect(outcome).toMatchObject({
      result: 'rolled_back',
      reason: "rollback webhook 'kill-switch' answered 200 (by webhook)",
      evidence: { hook: 'kill-switch', status: 200, answer: 'incident 4711' },
    });
    const events = hooks.requests('audit').filter((r) => r.json.rollout.route === route);
    const eventKinds = new Set(events.map((e) => e.json.event?.kind));
    expect([...eventKinds].sort()).toEqual(['decision', 'outcome', 'step']);
    expect(events.every((e) => e.signed)).toBe(true);
    expect(events.at(-1)!.json.event).toMatchObject({ kind: 'outcome', result: 'rolled_back' });
    const post = hooks.requests('cleanup').filter((r) => r.json.rollout.route === route);
    expect(post).toHaveLength(1);
    expect(post[0].json).toMatchObject({
      type: 'post-rollout',
      rollout: { outcome: { result: 'rolled_back' } },
    });
    await saveHistory(client, handle.workflowId, undefined, 'webhook-rollback-hook-and-events');
  }, 60_000);

  const errorBudget = (source = 'prom') => ({
    name: 'error-budget',
    provider: {
      prometheus: {
        source,
        query: 'sum(rate(app_errors_total{route="{{route}}",arm="{{arm}}",model="{{target}}"}[5m]))',
      },
    },
    successCondition: 'result < 0.05',
    interval: '100ms',
    failureLimit: 1,
  });
  const matchers = (q: string) =>
    Object.fromEntries(queryNames(q).selectors[0].matchers.map((m) => [m.label, m.value]));

  it('a failing query rolls the canary back, with the query and its value in the evidence', async () => {
    const route = 'analysis-failing';
    prom.answer((q) =>
      q.includes(`route="${route}"`) ? (q.includes('arm="canary"') ? 0.2 : 0.01) : undefined,
    );
    const handle = await start(route, spec(route, { analysis: { checks: [errorBudget()] } }));
    const outcome = await handle.result();
    const query = `sum(rate(app_errors_total{route="${route}",arm="canary",model="openai:gpt-4o"}[5m]))`;
    expect(outcome).toMatchObject({
      result: 'rolled_back',
      reason:
        'analysis check error-budget: canary 0.2, stable 0.01 fails result < 0.05 (2 failure(s), failureLimit 1) (by analysis)',
      evidence: { analysis: { check: 'error-budget', query, value: 0.2, stable: 0.01, failures: 2 } },
    });
    const status = await handle.query(statusQuery);
    expect(status.decisions.at(-1)).toMatchObject({
      action: 'rollback',
      policy: 'analysis',
      stats: { check: 'error-budget', query, value: 0.2 },
    });
    expect(status.analysis?.background[0]).toMatchObject({
      name: 'error-budget',
      verdict: 'failed',
      failures: 2,
    });
    expect(kinds(route)).toContain('analysis');
    // Each arm was queried with its own labels, read back with Prometheus's own grammar.
    const mine = prom.queries.filter((q) => q.includes(route));
    expect(new Set(mine.map((q) => JSON.stringify(matchers(q))))).toEqual(
      new Set([
        JSON.stringify({ route, arm: 'canary', model: 'openai:gpt-4o' }),
        JSON.stringify({ route, arm: 'stable', model: 'anthropic:claude-sonnet-4' }),
      ]),
    );
    await saveHistory(client, handle.workflowId, undefined, 'analysis-failed-rolled-back');
  }, 60_000);

  it('an unreachable metric source is inconclusive: the canary holds at its share and alerts after holdAfter', async () => {
    const route = 'analysis-unreachable';
    const handle = await start(
      route,
      spec(route, { analysis: { checks: [errorBudget('prom-down')], holdAfter: '500ms' } }),
    );
    const held = await waitForStatus(handle, (s) => s.analysis?.background[0]?.verdict === 'held');
    expect(held.shareBps).toBe(5000);
    expect(held.steps.map((s) => s.toBps)).toEqual([5000]);
    expect(held.analysis!.background[0].last).toMatchObject({
      outcome: 'inconclusive',
      value: null,
      error: "metric source 'prom-down' unreachable (ECONNREFUSED)",
    });
    await until(() => kinds(route).includes('analysis'), 'the analysis alert', 10_000);
    // The policy would promote this equal candidate: the inconclusive check turned each go into a hold.
    await waitForStatus(handle, (s) => s.decisions.filter((d) => d.policy === 'sequential').length >= 3);
    const status = await handle.query(statusQuery);
    const canaryDecisions = status.decisions.filter((d) => d.policy === 'sequential');
    expect(canaryDecisions.every((d) => d.action === 'hold')).toBe(true);
    expect(canaryDecisions.at(-1)!.reasons[0]).toBe(
      'analysis not passing: the step waits for a successful measurement',
    );
    expect(status.shareBps).toBe(5000);
    expect(await details(handle)).toContain(
      "analysis error-budget: inconclusive: metric source 'prom-down' unreachable (ECONNREFUSED) **(held: inconclusive)**",
    );
    expect(kinds(route).filter((k) => k === 'analysis')).toHaveLength(1);
    const cli = stripVTControlCharacters(renderGates(await handle.query(statusQuery)).join('\n'));
    expect(cli).toMatch(
      /error-budget +held +0 ok \/ 0 failed \/ \d+ inconclusive +error-budget: inconclusive: metric source 'prom-down' unreachable/,
    );
    await handle.executeUpdate(rollbackUpdate, { args: [{ reason: 'test over' }] });
    await saveHistory(client, handle.workflowId, undefined, 'analysis-unreachable-held');
  }, 60_000);

  it('an analysis step compares the arms and lets an equal canary through', async () => {
    const route = 'analysis-step';
    prom.answer((q) =>
      q.includes(`route="${route}"`) ? (q.includes('arm="canary"') ? 1.05 : 1.0) : undefined,
    );
    const handle = await start(route, {
      ...spec(route),
      canary: undefined,
      bake: undefined,
      steps: [
        { setShare: 1000 },
        {
          analysis: {
            count: 2,
            checks: [
              {
                name: 'p95-latency',
                provider: {
                  prometheus: {
                    source: 'prom',
                    query:
                      'histogram_quantile(0.95, sum by (le) (rate(app_latency_bucket{route="{{route}}",arm="{{arm}}"}[5m])))',
                  },
                },
                successCondition: 'canary <= stable * 1.1',
                interval: '100ms',
              },
            ],
          },
        },
        { setShare: 10_000 },
      ],
    } as RolloutSpecInput);
    expect((await handle.result()).result).toBe('completed');
    const status = await handle.query(statusQuery);
    const passed = status.decisions.find((d) => d.policy === 'analysis');
    expect(passed).toMatchObject({ action: 'promote-step', stats: { 'p95-latency': 1.05 } });
    expect(passed!.reasons[0]).toBe(
      'analysis p95-latency: canary 1.05, stable 1 meets canary <= stable * 1.1',
    );
    expect(status.plan[1]).toMatchObject({ kind: 'analysis', description: 'analysis p95-latency (2x)' });
    await saveHistory(client, handle.workflowId, undefined, 'analysis-step-passed');
  }, 60_000);
});
