/**
 * `model-rollout worker`: runs rollout and guardian workflows and their activities on the task queue, with
 * Postgres (DATABASE_URL or the embedded database, migrations applied), a provider chain for the LLM judge
 * and a Temporal client for starting route guardians. Ctrl-C stops it after the tasks in hand.
 */
import type { Command } from 'commander';
import { UsageError } from '../errors';
import { untilInterrupted } from '../signals';

interface WorkerCommandOptions {
  taskQueue?: string;
  simulator?: string;
  captureRetention?: string;
  metricsPort?: string;
  metricsHost: string;
}

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
      '--metrics-port <port>',
      "serve the worker's Prometheus metrics on this port (Temporal SDK: task slots, schedule-to-start and execution latency per activity)",
    )
    .option('--metrics-host <host>', 'address of the metrics listener', '127.0.0.1')
    .addHelpText(
      'after',
      '\nExamples:\n  model-rollout worker\n  model-rollout worker --simulator http://127.0.0.1:4010\n  model-rollout worker --metrics-port 9464 --metrics-host 0.0.0.0',
    )
    .action(async (opts: WorkerCommandOptions) => {
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
      const { createClient, temporalSettings, TASK_QUEUE } =
        await import('../../control-plane/temporal/connection');
      const temporal = temporalSettings();
      const { address, namespace } = temporal;
      const taskQueue = opts.taskQueue ?? TASK_QUEUE;
      const stops: Array<() => Promise<unknown>> = [];
      const stop = async () => {
        for (const fn of stops.reverse())
          await fn().catch((err: Error) => console.error(`while stopping: ${err.message}`));
      };
      try {
        const { simulatorRegistry } = await import('../../data-plane/providers');
        const { deploymentRegistry } = await import('../../data-plane/providers/providers-file');
        // Provider endpoints from MODEL_ROLLOUT_PROVIDERS_FILE and the environment only: a bad file stops the
        // worker here, naming the field, before it connects anywhere.
        const providers = opts.simulator ? simulatorRegistry(opts.simulator) : deploymentRegistry();
        const client = await createClient({ address, namespace }); // fails fast, naming the address
        stops.push(() => client.connection.close());
        const { openDatabase } = await import('../../store/database');
        const { migrate } = await import('../../store/migrate');
        const db = await openDatabase();
        stops.push(() => db.close());
        const migrated = await migrate(db.pool);
        const { createFallbackChain } = await import('../../data-plane/providers');
        const chain = createFallbackChain({ registry: providers });
        stops.push(() => chain.close());
        const { loadAlertChannels } = await import('../../control-plane/alerts/channels');
        const alertChannels = loadAlertChannels(); // a bad channels file stops the worker here, naming the field
        const { createActivities } = await import('../../../activities');
        const { startWorker } = await import('../../control-plane/temporal/worker');
        const worker = await startWorker({
          address,
          namespace,
          taskQueue,
          activities: createActivities({ db, chain, client, taskQueue, alertChannels, providers }),
        });
        stops.push(() => worker.shutdown());
        const { captureRetentionMs, ensureRetentionSchedule } =
          await import('../../control-plane/temporal/retention-schedule');
        const { parseDuration, formatDuration } = await import('../../decision/config/duration');
        let retentionMs: number;
        try {
          retentionMs = opts.captureRetention ? parseDuration(opts.captureRetention) : captureRetentionMs();
        } catch (err) {
          throw new UsageError(`--capture-retention: ${(err as Error).message}`);
        }
        const { eventRetentionMs, rollupRetentionMs } =
          await import('../../control-plane/temporal/retention-schedule');
        let eventMs: number;
        let rollupMs: number;
        try {
          eventMs = eventRetentionMs();
          rollupMs = rollupRetentionMs();
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
        await ensureRetentionSchedule(client, {
          retentionMs,
          eventRetentionMs: eventMs,
          rollupRetentionMs: rollupMs,
          taskQueue,
        });
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
        console.log('Press Ctrl-C to stop.');
        // Runs until Ctrl-C, or until the worker itself fails (then the error is the command's).
        let interrupted = false;
        const ended = worker.done.then(() => {
          if (!interrupted) throw new Error('the worker stopped unexpectedly');
        });
        ended.catch(() => {}); // awaited through the race below
        await Promise.race([untilInterrupted().then(() => void (interrupted = true)), ended]);
      } finally {
        await stop();
      }
    });
}
