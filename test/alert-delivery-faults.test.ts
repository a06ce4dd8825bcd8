/**
 * A rollback must never wait for an alert. Three alert channels that misbehave as real ones do (one hangs
 * without answering, one answers 500, one redirects elsewhere) are named by a rollout that is then rolled
 * back: the routing is restored and the caller answered at once, while the alert activity takes its retries
 * in the background; the redirect is never followed; the rollout then ends as rolled back.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { createActivities } from '../activities';
import { createFallbackChain } from '../src/data-plane/providers/fallback-chain';
import { simulatorRegistry } from '../src/data-plane/providers/registry';
import { startSimulator, type SimulatorHandle } from '../src/tooling/simulator';
import { createRoute, getRoute } from '../src/store/routing-state';
import { parseTargetWithFallbacks } from '../src/decision/config/target';
import type { RunningWorker } from '../src/control-plane/temporal/worker';
import { rolloutWorkflow } from '../workflows';
import { rollbackUpdate, statusQuery } from '../workflows/messages';
import { until } from './helpers/rollout';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { temporalTestEnv } from './helpers/temporal';

describe('alert channels that hang, fail or redirect', () => {
  const env = temporalTestEnv();
  let db: TestDatabase;
  let sim: SimulatorHandle;
  let client: Client;
  let worker: RunningWorker;
  let webhooks: http.Server;
  const hits: Record<string, number> = { hang: 0, fail: 0, redirect: 0, elsewhere: 0 };
  const hanging: http.ServerResponse[] = [];

  beforeAll(async () => {
    webhooks = http.createServer((req, res) => {
      req.resume();
      const name = (req.url ?? '').slice(1);
      hits[name] = (hits[name] ?? 0) + 1;
      if (name === 'hang') return void hanging.push(res); // never answers
      if (name === 'fail') return void res.writeHead(500).end('upstream broke');
      if (name === 'redirect') return void res.writeHead(302, { location: '/elsewhere' }).end();
      res.end('ok'); // /elsewhere: must never be reached
    });
    await new Promise<void>((r) => webhooks.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(webhooks.address() as { port: number }).port}`;
    db = await createTestDatabase();
    sim = await startSimulator({ scenario: { default: { latencyMs: { median: 400 }, accuracy: 0.9 } } });
    client = await env.client();
    const channels = new Map([
      ['hangs', { type: 'slack' as const, url: `${base}/hang` }],
      ['fails', { type: 'slack' as const, url: `${base}/fail` }],
      ['redirects', { type: 'slack' as const, url: `${base}/redirect` }],
    ]);
    worker = await env.worker(
      createActivities({
        db,
        chain: createFallbackChain({ registry: simulatorRegistry(sim.url) }),
        client,
        taskQueue: env.taskQueue,
        alertChannels: channels,
      }),
    );
  }, 60_000);

  afterAll(async () => {
    for (const res of hanging) res.destroy();
    await worker?.shutdown();
    webhooks?.close();
    await sim?.close();
    await db?.close();
  });

  it('restores the route and answers the rollback at once; the alert retries in the background', async () => {
    const route = 'alerts-misbehave';
    await createRoute(
      db.pool,
      { name: route, blue: parseTargetWithFallbacks({ target: 'anthropic:claude-sonnet-4' }) },
      { actor: 'test', reason: 'test route' },
    );
    const handle = await client.workflow.start(rolloutWorkflow, {
      taskQueue: env.taskQueue,
      workflowId: `rollout-${route}-${Date.now()}`,
      args: [
        {
          route,
          candidate: 'openai:gpt-4o',
          actor: 'test',
          evaluation: { interval: '1h' },
          triggers: { interval: '1h' },
          alerts: { channels: ['hangs', 'fails', 'redirects'] },
        },
      ],
    });
    // The phase turns to canary as the first share is being set: wait for the route itself to carry it.
    await until(
      async () =>
        (await handle.query(statusQuery)).phase === 'canary' &&
        (await getRoute(db.pool, route))!.canaryBps > 0,
      'the rollout to put a canary share on the route',
      60_000,
      200,
    );

    const t0 = Date.now();
    const outcome = await handle.executeUpdate(rollbackUpdate, {
      args: [{ reason: 'answers look off', actor: 'test' }],
    });
    const answeredMs = Date.now() - t0;
    expect(outcome.result).toBe('rolled_back');
    // The routing change and the answer come before any alert: not after the hanging webhook's 10 s timeout.
    expect(answeredMs).toBeLessThan(5_000);
    expect((await getRoute(db.pool, route))!.canaryBps).toBe(0);

    // The alert was tried on every channel and is being retried, while the workflow waits for nothing else.
    const deadline = Date.now() + 30_000;
    while ((hits.hang < 1 || hits.fail < 2 || hits.redirect < 2) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 200));
    expect(hits.fail).toBeGreaterThanOrEqual(2);
    expect(hits.redirect).toBeGreaterThanOrEqual(2);
    expect(hits.hang).toBeGreaterThanOrEqual(1);
    expect(hits.elsewhere).toBe(0); // a redirect is never followed

    // After its bounded retries the alert gives up with a logged warning, and the rollout ends as rolled back.
    const result = await handle.result();
    expect(result.result).toBe('rolled_back');
    expect(hits.elsewhere).toBe(0);
    const history = await handle.fetchHistory();
    const failed = history.events!.filter(
      (e) => e.activityTaskFailedEventAttributes || e.activityTaskTimedOutEventAttributes,
    );
    expect(failed.length).toBeGreaterThanOrEqual(1);
  }, 180_000);
});
