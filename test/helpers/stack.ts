import { Client } from '@temporalio/client';
import { createActivities } from '../../activities';
import type { HttpEvaluatorService } from '../../src/decision/scoring/evaluators';
import { createFallbackChain } from '../../src/data-plane/providers/fallback-chain';
import { simulatorRegistry } from '../../src/data-plane/providers/registry';
import { createRouter, type Router } from '../../src/data-plane/router/router';
import { startSimulator, type Scenario, type SimulatorHandle } from '../../src/tooling/simulator';
import { createRoute, type SlotConfig } from '../../src/store/routing-state';
import type { RunningWorker } from '../../src/control-plane/temporal/worker';
import { startTraffic, type Traffic } from '../../src/tooling/traffic';
import { parseTargetWithFallbacks } from '../../src/decision/config/target';
import { createTestDatabase, type TestDatabase } from './db';
import { temporalTestEnv } from './temporal';

/**
 * The whole system for a control-plane test: a fresh database, the provider simulator, a router that
 * captures answers for scoring, a worker on the shared Temporal dev server, and a client.
 */
export interface TestStack {
  env: ReturnType<typeof temporalTestEnv>;
  db: TestDatabase;
  sim: SimulatorHandle;
  router: Router;
  worker: RunningWorker;
  client: Client;
  traffic(route: string, ratePerSec: number, options?: { prompts?: readonly string[] }): Traffic;
  createRoute(name: string, blue: string | SlotConfig): Promise<void>;
  close(): Promise<void>;
}

export async function startTestStack(
  scenario: Scenario,
  options: { httpServices?: Record<string, HttpEvaluatorService> } = {},
): Promise<TestStack> {
  const env = temporalTestEnv();
  const db = await createTestDatabase();
  const sim = await startSimulator({ scenario });
  const registry = simulatorRegistry(sim.url);
  const router = await createRouter({
    database: db,
    connectionString: db.connectionString,
    providers: { registry, breaker: false },
    capture: { enabled: true },
    cache: { pollIntervalMs: 200 },
    events: { flushIntervalMs: 20 },
  });
  const client = await env.client();
  const chain = createFallbackChain({ registry });
  const worker = await env.worker(
    createActivities({
      db,
      chain,
      client,
      taskQueue: env.taskQueue,
      httpServices: options.httpServices ?? {},
    }),
  );
  const traffics: Traffic[] = [];
  return {
    env,
    db,
    sim,
    router,
    worker,
    client,
    traffic(route, ratePerSec, options) {
      const t = startTraffic({ router, route, ratePerSec, prompts: options?.prompts });
      traffics.push(t);
      return t;
    },
    async createRoute(name, blue) {
      await createRoute(
        db.pool,
        { name, blue: typeof blue === 'string' ? parseTargetWithFallbacks({ target: blue }) : blue },
        { actor: 'test', reason: 'test route' },
      );
    },
    async close() {
      for (const t of traffics) await t.stop();
      await worker.shutdown();
      await router.close();
      await chain.close();
      await client.connection.close();
      await sim.close();
      await db.close();
    },
  };
}
