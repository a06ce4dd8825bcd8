import type { Client } from '@temporalio/client';
import { createActivities } from '../../activities';
import type { AlertChannels } from '../control-plane/alerts/channels';
import { createGateway, type Gateway } from '../data-plane/gateway/server';
import { createFallbackChain } from '../data-plane/providers/fallback-chain';
import { simulatorRegistry, type ProviderRegistry } from '../data-plane/providers/registry';
import { deploymentRegistry } from '../data-plane/providers/providers-file';
import { createRouter, type Router } from '../data-plane/router/router';
import { startSimulator, type Scenario, type SimulatorHandle } from './simulator';
import { openDatabase, type Database } from '../store/database';
import { stopEmbeddedPostgres } from '../store/embedded-postgres';
import { migrate } from '../store/migrate';
import { createClient, TASK_QUEUE, temporalSettings } from '../control-plane/temporal/connection';
import { waitForTemporal } from '../control-plane/temporal/wait-for-temporal';
import { waitForPostgres } from '../store/wait-for-postgres';
import { startTemporal, type TemporalServer } from '../control-plane/temporal/dev-server';
import { captureRetentionMs, ensureRetentionSchedule } from '../control-plane/temporal/retention-schedule';
import { startWorker, type RunningWorker } from '../control-plane/temporal/worker';

/**
 * The local stack in one process tree: Temporal (dev server or TEMPORAL_ADDRESS), Postgres (DATABASE_URL or
 * embedded), migrations, optionally the provider simulator, a worker, a router and the gateway. Used by
 * `model-rollout dev` and the demo; each piece can also run on its own (`worker`, `gateway`, ...).
 */
export interface DevStack {
  temporal: TemporalServer;
  db: Database;
  client: Client;
  worker: RunningWorker;
  registry: ProviderRegistry;
  router: Router;
  simulator?: SimulatorHandle;
  gateway?: { url: string; server: Gateway };
  taskQueue: string;
  stop(): Promise<void>;
}

export interface DevStackOptions {
  temporalPort?: number;
  /** Start the provider simulator (with this scenario) and send every provider to it. */
  simulator?: Scenario | boolean;
  /** Serve the gateway on this port (0: any free port); omitted: no gateway. */
  gatewayPort?: number;
  /** Use these instead of starting them (tests). */
  temporal?: TemporalServer;
  db?: Database;
  taskQueue?: string;
  /** How often routers re-read all routing state (the safety net beside LISTEN/NOTIFY). */
  pollIntervalMs?: number;
  progress?: (message: string) => void;
  /** Alert channels of the worker (default: ALERT_CHANNELS_FILE / ALERT_CHANNELS). */
  alertChannels?: AlertChannels;
}

export async function startDevStack(options: DevStackOptions = {}): Promise<DevStack> {
  const progress = options.progress ?? (() => {});
  const stops: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    for (const fn of stops.reverse()) await fn().catch(() => {});
  };
  try {
    const db = options.db ?? (await openDatabase());
    // The stack stops what it started: an embedded Postgres it found running stays for the others.
    if (db.startedEmbedded) stops.push(() => stopEmbeddedPostgres());
    if (!options.db) stops.push(() => db.close());
    // A Postgres at DATABASE_URL that is not up yet (a container still starting) is waited for.
    const migrated = await waitForPostgres(db, () => migrate(db.pool), { progress });
    progress(
      `Postgres ready at ${db.url}${db.embedded ? ' (embedded)' : ''}; ${migrated.applied.length} migration(s) applied`,
    );

    // So is a Temporal server at TEMPORAL_ADDRESS (the dev server this starts is waited for by startTemporal).
    const settings = temporalSettings();
    if (!options.temporal && settings.configuredAddress) {
      const { connection } = await waitForTemporal(settings, { progress });
      await connection.close();
    }
    const temporal = options.temporal ?? (await startTemporal({ port: options.temporalPort, progress }));
    if (!options.temporal) stops.push(() => temporal.stop());

    let simulator: SimulatorHandle | undefined;
    if (options.simulator) {
      simulator = await startSimulator({
        scenario: options.simulator === true ? undefined : options.simulator,
      });
      stops.push(() => simulator!.close());
      progress(`provider simulator at ${simulator.url} (OpenAI and Anthropic wire formats)`);
    }
    const registry = simulator ? simulatorRegistry(simulator.url) : deploymentRegistry();

    const taskQueue = options.taskQueue ?? TASK_QUEUE;
    const client = await createClient({ address: temporal.address, namespace: temporal.namespace });
    stops.push(() => client.connection.close());
    const judgeChain = createFallbackChain({ registry });
    stops.push(() => judgeChain.close());
    const worker = await startWorker({
      address: temporal.address,
      namespace: temporal.namespace,
      taskQueue,
      activities: createActivities({
        db,
        chain: judgeChain,
        client,
        taskQueue,
        alertChannels: options.alertChannels,
        providers: registry,
      }),
    });
    stops.push(() => worker.shutdown());
    progress(`worker running on task queue ${taskQueue}`);
    await ensureRetentionSchedule(client, { retentionMs: captureRetentionMs(), taskQueue });

    const router = await createRouter({
      database: db,
      providers: { registry },
      capture: { enabled: true },
      keepRaw: true,
      cache: { pollIntervalMs: options.pollIntervalMs ?? 1000 },
    });
    stops.push(() => router.close());

    let gateway: DevStack['gateway'];
    if (options.gatewayPort !== undefined) {
      const server = createGateway({ router, auth: { disabled: true } });
      const url = await server.listen({ port: options.gatewayPort, host: '127.0.0.1' });
      stops.push(() => server.close());
      gateway = { url, server };
      progress(`gateway at ${url}/v1 (auth disabled for local dev)`);
    }
    return { temporal, db, client, worker, registry, router, simulator, gateway, taskQueue, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
