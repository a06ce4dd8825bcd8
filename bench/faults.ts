/**
 * Fault injection: a canary rollout with live traffic while Postgres goes away for minutes, then comes back.
 *
 *   npx tsx bench/faults.ts [--outage 300] [--mode refuse|blackhole] [--temporal-restart]
 *
 * Every process of the stack reaches Postgres through a TCP proxy in this process. In the middle of the canary
 * the proxy either refuses connections (a restart: ECONNREFUSED, existing connections reset) or blackholes
 * them (a failover or a dropped network path: nothing answers) for `--outage` seconds. With
 * `--temporal-restart` the Temporal dev server (persistent state) is also restarted during the canary.
 * Printed: what the data plane served during the outage and how it reported itself, and whether the rollout
 * carried on and completed with every step taken once, each in the audit trail once.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createActivities } from '../activities';
import { createFallbackChain } from '../src/data-plane/providers/fallback-chain';
import { simulatorRegistry } from '../src/data-plane/providers/registry';
import { createRouter } from '../src/data-plane/router/router';
import { startSimulator } from '../src/tooling/simulator';
import { openDatabase } from '../src/store/database';
import { ensureEmbeddedPostgres } from '../src/store/embedded-postgres';
import { migrate } from '../src/store/migrate';
import { createRoute, getRoute, listChanges } from '../src/store/routing-state';
import { createClient } from '../src/control-plane/temporal/connection';
import { startTemporal, type TemporalServer } from '../src/control-plane/temporal/dev-server';
import { startWorker } from '../src/control-plane/temporal/worker';
import { startTraffic } from '../src/tooling/traffic';
import { parseTargetWithFallbacks } from '../src/decision/config/target';
import { rolloutWorkflow } from '../workflows';
import { statusQuery, type RolloutStatus } from '../workflows/messages';
import { startTcpProxy, viaProxy } from '../test/helpers/tcp-proxy';
import { freePort, scratchDatabase } from './lib';

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const OUTAGE_S = Number(flag('outage', '300'));
const MODE = flag('mode', 'refuse') as 'refuse' | 'blackhole';
const RESTART_TEMPORAL = args.includes('--temporal-restart');
const ROUTE = 'faults';
const STEPS = [500, 1000, 2000, 5000, 10_000];
const started = Date.now();
const say = (m: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${m}`);

const baseUrl =
  process.env.DATABASE_URL ?? (await ensureEmbeddedPostgres({ progress: say })).connectionString;
const scratch = await scratchDatabase(baseUrl, 'mr_faults');
const pgPort = Number(new URL(scratch.url).port);
const pgProxy = await startTcpProxy({ port: pgPort });
const dbUrl = viaProxy(scratch.url, pgProxy);

const temporalDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-faults-temporal-'));
const temporalPort = await freePort();
const uiPort = await freePort();
const startServer = () =>
  startTemporal({ dataDir: temporalDir, port: temporalPort, uiPort, progress: (m) => say(`temporal: ${m}`) });
let temporal: TemporalServer = await startServer();

const db = await openDatabase({ url: dbUrl, poolSize: 8 });
await migrate(db.pool);
await createRoute(
  db.pool,
  { name: ROUTE, blue: parseTargetWithFallbacks({ target: 'anthropic:claude-sonnet-4' }) },
  { actor: 'bench', reason: 'fault injection' },
);
const sim = await startSimulator({ scenario: { default: { latencyMs: { median: 20 }, accuracy: 0.9 } } });
const registry = simulatorRegistry(sim.url);
const router = await createRouter({
  database: db,
  connectionString: dbUrl,
  providers: { registry, breaker: false },
  capture: { enabled: true },
  cache: { pollIntervalMs: 1000 },
});
const client = await createClient({ address: temporal.address, namespace: temporal.namespace });
const chain = createFallbackChain({ registry });
const taskQueue = 'faults';
const worker = await startWorker({
  address: temporal.address,
  namespace: temporal.namespace,
  taskQueue,
  activities: createActivities({ db, chain, client, taskQueue }),
});
const traffic = startTraffic({ router, route: ROUTE, ratePerSec: 40 });

const handle = await client.workflow.start(rolloutWorkflow, {
  taskQueue,
  workflowId: `rollout-${ROUTE}`,
  args: [
    {
      route: ROUTE,
      candidate: 'openai:gpt-4o',
      actor: 'bench',
      canary: { steps: STEPS },
      evaluation: { interval: '5s', scoreBatch: 2000 },
      triggers: { interval: '5s', minRequests: 50 },
      bake: { duration: '10s' },
      policy: {
        policy: 'sequential',
        sequential: { promotion: { minCanaryScoredPerStep: 20, minCanaryRequestsPerStep: 30 } },
      },
    },
  ],
});
const status = async (): Promise<RolloutStatus | undefined> =>
  handle.query(statusQuery).catch(() => undefined);
const waitFor = async (what: (s: RolloutStatus) => boolean, label: string, ms: number) => {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await status();
    if (s && what(s)) return s;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${label}; last: ${JSON.stringify(s?.phase)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
};

const atCut = await waitFor((s) => s.phase === 'canary' && s.shareBps >= 1000, 'the canary at 10%', 300_000);
say(
  `canary at ${atCut.shareBps / 100}% (routing version ${atCut.routingVersion}): Postgres ${MODE} for ${OUTAGE_S} s`,
);
traffic.reset();
const cutAt = Date.now();
pgProxy.set(MODE);
const health: Array<{ ok: boolean; stale: boolean; stalenessMs: number; events?: unknown }> = [];
const sampler = setInterval(
  () =>
    void router.health(500).then((h) =>
      health.push({
        ok: h.ok,
        stale: h.routing.stale,
        stalenessMs: h.routing.stalenessMs,
        events: h.events,
      }),
    ),
  1000,
);
if (RESTART_TEMPORAL) {
  await new Promise((r) => setTimeout(r, Math.min(30_000, (OUTAGE_S * 1000) / 3)));
  say('restarting the Temporal dev server (persistent state)');
  await temporal.stop();
  temporal = await startServer();
  say('Temporal is back');
}
await new Promise((r) => setTimeout(r, Math.max(0, cutAt + OUTAGE_S * 1000 - Date.now())));
const duringOutage = traffic.reset();
clearInterval(sampler);
const during = await status();
pgProxy.set('up');
say(`Postgres back; the rollout is at ${during ? during.shareBps / 100 + '% (' + during.phase + ')' : '?'}`);

const outcome = await handle.result();
const after = await traffic.stop();
const final = await status();
const changes = (await listChanges(db.pool, ROUTE, 200)).reverse();
const stepChanges = changes.filter((c) => /canary share/.test(c.reason));
const duplicates = stepChanges.length - new Set(stepChanges.map((c) => c.reason)).size;

console.log('');
console.log(
  `fault: Postgres ${MODE} for ${OUTAGE_S} s in the middle of a canary${RESTART_TEMPORAL ? ', and a Temporal restart' : ''}`,
);
console.log(
  `data plane during the outage: ${duringOutage.ok} answered, ${duringOutage.failed} failed of ${duringOutage.sent} sent; ` +
    `routing health ok ${health.filter((h) => h.ok).length}/${health.length} samples, stale in ${health.filter((h) => h.stale).length}, staleness up to ${Math.max(0, ...health.map((h) => h.stalenessMs)) / 1000} s`,
);
console.log(`event writer at the end of the outage: ${JSON.stringify(health.at(-1)?.events)}`);
console.log(
  `rollout: ${outcome.result} (${outcome.reason}) in ${((Date.now() - started) / 1000).toFixed(0)} s`,
);
console.log(`steps taken: ${final?.steps.map((s) => `${s.fromBps / 100}->${s.toBps / 100}%`).join(', ')}`);
console.log(
  `audit trail: ${changes.length} changes, ${stepChanges.length} share steps, ${duplicates} duplicated`,
);
const route = await getRoute(db.pool, ROUTE);
console.log(
  `route now: stable slot ${route?.stableSlot}, canary ${route?.canaryBps} bps, owner ${route?.owner}`,
);
console.log(`after the outage: ${after.ok} answered, ${after.failed} failed`);

await worker.shutdown();
await router.close();
await chain.close();
await client.connection.close();
await temporal.stop();
await sim.close();
await db.close();
await pgProxy.close();
await scratch.drop();
fs.rmSync(temporalDir, { recursive: true, force: true });
const expected = STEPS.length; // 500 ... 10000 (the last one is the promotion)
process.exitCode =
  outcome.result === 'completed' && duplicates === 0 && (final?.steps.length ?? 0) === expected ? 0 : 1;
