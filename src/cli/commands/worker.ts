/**
 * `model-rollout worker`: runs rollout and guardian workflows and their activities on the task queue, with
 * Postgres (DATABASE_URL or the embedded database, migrations applied), a provider chain for the LLM judge
 * and a Temporal client for starting route guardians. Ctrl-C stops it after the tasks in hand.
 *
 * It waits for Temporal and Postgres instead of exiting when they are not there yet (a deployment starts its
 * pieces in any order), and `--health-port` serves probes that say what it waits for.
 */
import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import type { HealthAnswer } from '../../startup/health-listener';
import type { Readiness } from '../../startup/wait';
import type { Database } from '../../store/database';
import type { RunningWorker } from '../../control-plane/temporal/worker';
import { UsageError } from '../errors';
import { untilInterrupted } from '../signals';

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description(
      'Run a worker for rollouts (Temporal from TEMPORAL_ADDRESS/TEMPORAL_PROFILE, Postgres at DATABASE_URL or embedded); Ctrl-C stops it',
    )
    .option('--task-queue <name>', 'task queue to poll (default TEMPORAL_TASK_QUEUE or model-rollout)')
    .option(
      '--simulator <url>',
      'send the LLM judge to the provider simulator at this URL (no real keys used)',
    )
    .option(
      '--capture-retention <duration>',
      'delete captured prompts and answers older than this, hourly (default MODEL_ROLLOUT_CAPTURE_RETENTION or 7d)',
    )
    .option(
      '--health-port <port>',
      'serve /livez, /readyz and /healthz on this port (ready: connected to Temporal and Postgres, polling)',
    )
    .option(
      '--health-host <host>',
      'address of the health listener (0.0.0.0 for a Kubernetes probe)',
      '127.0.0.1',
    )
    .option(
      '--metrics-port <port>',
      "serve the worker's Prometheus metrics on this port (Temporal SDK: task slots, schedule-to-start and execution latency per activity)",
    )
    .option('--metrics-host <host>', 'address of the metrics listener', '127.0.0.1')
    .addHelpText(
      'after',
      '\nIt waits for Temporal and Postgres when they are not there yet (one line per attempt), and goes to work' +
        '\nwhen they answer.\n' +
        '\nExamples:\n  model-rollout worker\n  model-rollout worker --simulator http://127.0.0.1:4010' +
        '\n  model-rollout worker --health-port 9091 --health-host 0.0.0.0' +
        '\n  model-rollout worker --metrics-port 9464 --metrics-host 0.0.0.0',
    )
    .action(async (opts: WorkerCommandOptions) => {
      const healthPort = opts.healthPort === undefined ? undefined : Number(opts.healthPort);
      if (healthPort !== undefined && (!Number.isInteger(healthPort) || healthPort < 0 || healthPort > 65535))
        throw new UsageError(`--health-port must be a port number, got ${opts.healthPort}`);
      let metricsBindAddress: string | undefined;
      if (opts.metricsPort !== undefined) {
        const port = Number(opts.metricsPort);
        if (!Number.isInteger(port) || port < 1 || port > 65535)
          throw new UsageError(`--metrics-port must be a port number (1-65535), got ${opts.metricsPort}`);
        const host = opts.metricsHost.includes(':') ? `[${opts.metricsHost}]` : opts.metricsHost;
        metricsBindAddress = `${host}:${port}`;
        // First of all: the SDK's runtime (which serves the metrics) is installed once per process, before any
        // connection to Temporal.
        const { installTemporalRuntime } = await import('../../control-plane/temporal/runtime');
        try {
          installTemporalRuntime({ metricsBindAddress });
        } catch (err) {
          throw new Error(
            `metrics on ${metricsBindAddress}: ${(err as Error).message.replace(/^Failed to start prometheus metrics exporter: /, '')}; pick another --metrics-port`,
          );
        }
      }
      const { temporalSettings, TASK_QUEUE } = await import('../../control-plane/temporal/connection');
      const temporal = temporalSettings();
      const { address, namespace } = temporal;
      const taskQueue = opts.taskQueue ?? TASK_QUEUE;
      const stops: Array<() => Promise<unknown>> = [];
      const stop = async () => {
        for (const fn of stops.reverse())
          await fn().catch((err: Error) => console.error(`while stopping: ${err.message}`));
      };
      // Ctrl-C or SIGTERM (Kubernetes) while waiting ends the wait; once running, it stops the worker.
      let interrupted = false;
      const interruption = untilInterrupted().then(() => void (interrupted = true));
      const abort = new AbortController();
      void interruption.then(() => abort.abort(new Error('interrupted')));
      try {
        const { Readiness } = await import('../../startup/wait');
        const readiness = new Readiness(['postgres', 'temporal']);
        // Set once the worker polls; the health listener answers from it from then on.
        const live: { running?: RunningState } = {};
        if (healthPort !== undefined) {
          const { startHealthListener } = await import('../../startup/health-listener');
          const listener = await startHealthListener({
            port: healthPort,
            host: opts.healthHost,
            health: () => (live.running ? live.running.check() : waitingAnswer(readiness)),
          });
          stops.push(() => listener.close());
          console.log(`health:    ${listener.url}/livez, ${listener.url}/readyz, ${listener.url}/healthz`);
        }
        const { simulatorRegistry } = await import('../../data-plane/providers');
        const { deploymentRegistry } = await import('../../data-plane/providers/providers-file');
        // Provider endpoints from MODEL_ROLLOUT_PROVIDERS_FILE and the environment only: a bad file stops the
        // worker here, naming the field, before it connects anywhere.
        const providers = opts.simulator ? simulatorRegistry(opts.simulator) : deploymentRegistry();
        const { loadAlertChannels } = await import('../../control-plane/alerts/channels');
        const alertChannels = loadAlertChannels(); // a bad channels file stops the worker here, naming the field
        // Webhook gates and metric sources, by name (WEBHOOK_GATES_FILE, METRIC_SOURCES_FILE): the same.
        const { loadWebhookGates } = await import('../../control-plane/gates/webhooks');
        const { loadMetricSources } = await import('../../control-plane/gates/sources');
        const webhookGates = loadWebhookGates();
        const metricSources = loadMetricSources();
        const { parseDuration, formatDuration } = await import('../../decision/config/duration');
        const { captureRetentionMs, ensureRetentionSchedule, eventRetentionMs, rollupRetentionMs } =
          await import('../../control-plane/temporal/retention-schedule');
        let retentionMs: number;
        try {
          retentionMs = opts.captureRetention ? parseDuration(opts.captureRetention) : captureRetentionMs();
        } catch (err) {
          throw new UsageError(`--capture-retention: ${(err as Error).message}`);
        }
        let eventMs: number;
        let rollupMs: number;
        try {
          eventMs = eventRetentionMs();
          rollupMs = rollupRetentionMs();
        } catch (err) {
          throw new UsageError((err as Error).message);
        }

        const { openDatabase } = await import('../../store/database');
        const { migrate } = await import('../../store/migrate');
        const { waitForPostgres } = await import('../../store/wait-for-postgres');
        const { waitForTemporal } = await import('../../control-plane/temporal/wait-for-temporal');
        const db = await openDatabase();
        stops.push(() => db.close());
        // Both at once, each with its own progress lines; the first that cannot be waited for ends both.
        const progress = (line: string) => console.error(line);
        const waits = Promise.all([
          waitForPostgres(db, () => migrate(db.pool), { progress, readiness, signal: abort.signal }),
          waitForTemporal(temporal, { progress, readiness, signal: abort.signal, native: true }),
        ]);
        waits.catch(() => abort.abort(new Error('startup failed')));
        let migrated: Awaited<ReturnType<typeof migrate>>;
        let connections: Awaited<ReturnType<typeof waitForTemporal>>;
        try {
          [migrated, connections] = await waits;
        } catch (err) {
          if (interrupted) return;
          throw err;
        }
        const { Client } = await import('@temporalio/client');
        const { tracingClientInterceptors } = await import('../../control-plane/telemetry/tracing');
        // Traced, the guardian a completed rollout starts continues the rollout's trace.
        const interceptors = await tracingClientInterceptors();
        const client = new Client({
          connection: connections.connection,
          namespace,
          ...(interceptors ? { interceptors } : {}),
        });
        stops.push(() => client.connection.close());
        const { createFallbackChain } = await import('../../data-plane/providers');
        const chain = createFallbackChain({ registry: providers });
        stops.push(() => chain.close());
        const { createActivities } = await import('../../../activities');
        const { startWorker } = await import('../../control-plane/temporal/worker');
        const worker = await startWorker({
          address,
          namespace,
          taskQueue,
          connection: connections.native,
          activities: createActivities({
            db,
            chain,
            client,
            taskQueue,
            alertChannels,
            providers,
            webhookGates,
            metricSources,
          }),
        });
        stops.push(() => worker.shutdown());
        await ensureRetentionSchedule(client, {
          retentionMs,
          eventRetentionMs: eventMs,
          rollupRetentionMs: rollupMs,
          taskQueue,
        });
        live.running = runningState(worker, client, db);
        console.log(`worker running on task queue "${taskQueue}"`);
        if (metricsBindAddress) console.log(`metrics:   http://${metricsBindAddress}/metrics`);
        console.log(`Temporal:  ${address} (namespace ${namespace}; ${temporal.security})`);
        console.log(
          `Postgres:  ${db.url}${db.embedded ? ' (embedded)' : ''}; ${migrated.applied.length} migration(s) applied`,
        );
        console.log(
          `judge:     ${opts.simulator ? `provider simulator at ${opts.simulator}` : 'real providers (keys from the environment)'}`,
        );
        console.log(
          `retention: captured text deleted after ${formatDuration(retentionMs)}, events after ${formatDuration(eventMs)}, rollups after ${formatDuration(rollupMs)} (schedule capture-retention)`,
          `alerts:    ${
            alertChannels.size
              ? [...alertChannels].map(([name, c]) => `${name} (${c.type})`).join(', ')
              : 'no channels (ALERT_CHANNELS_FILE): alerts are only logged'
          }`,
        );
        console.log(
          `gates:     webhooks ${webhookGates.size ? [...webhookGates.keys()].join(', ') : 'none (WEBHOOK_GATES_FILE)'}; ` +
            `metric sources ${metricSources.size ? [...metricSources].map(([n, c]) => `${n} (${c.type})`).join(', ') : 'none (METRIC_SOURCES_FILE)'}`,
        );
        console.log('Press Ctrl-C to stop.');
        // Runs until Ctrl-C, or until the worker itself fails (then the error is the command's).
        const ended = worker.done.then(() => {
          if (!interrupted) throw new Error('the worker stopped unexpectedly');
        });
        ended.catch(() => {}); // awaited through the race below
        await Promise.race([interruption, ended]);
      } finally {
        await stop();
      }
    });
}

interface WorkerCommandOptions {
  taskQueue?: string;
  simulator?: string;
  captureRetention?: string;
  healthPort?: string;
  healthHost: string;
  metricsPort?: string;
  metricsHost: string;
}

interface RunningState {
  check(): Promise<HealthAnswer>;
}

function waitingAnswer(readiness: Readiness): HealthAnswer {
  return {
    ready: false,
    body: {
      status: 'starting',
      ready: false,
      waitingFor: readiness.waitingFor(),
      dependencies: readiness.report(),
    },
  };
}

/**
 * Ready while the worker polls and Temporal and Postgres answer now (each asked with a 2 s deadline; one
 * check at a time, its answer reused for a second, however often probes ask).
 */
function runningState(worker: RunningWorker, client: Client, db: Database): RunningState {
  let last: { at: number; answer: Promise<HealthAnswer> } | undefined;
  const within = <T>(p: Promise<T>, ms: number) =>
    Promise.race([
      p.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms).unref()),
    ]).catch(() => false);
  const probe = async (): Promise<HealthAnswer> => {
    const [temporalOk, postgresOk] = await Promise.all([
      within(
        client.connection.withDeadline(Date.now() + 2_000, () => client.workflowService.getSystemInfo({})),
        2_500,
      ),
      within(db.pool.query('SELECT 1'), 2_000),
    ]);
    const state = worker.worker.getState();
    const polling = state === 'RUNNING';
    const waitingFor = [...(postgresOk ? [] : ['postgres']), ...(temporalOk ? [] : ['temporal'])];
    const ready = polling && waitingFor.length === 0;
    return {
      ready,
      body: {
        status: ready ? 'ready' : polling ? 'waiting' : 'stopping',
        ready,
        waitingFor,
        worker: { state, taskQueue: worker.worker.options.taskQueue },
      },
    };
  };
  return {
    check() {
      if (!last || Date.now() - last.at > 1_000) last = { at: Date.now(), answer: probe() };
      return last.answer;
    },
  };
}
