import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import {
  bundleWorkflowCode,
  NativeConnection,
  Worker,
  type WorkerOptions,
  type WorkflowBundle,
} from '@temporalio/worker';
import { activeTracing } from '../telemetry/tracing';
import { TASK_QUEUE, temporalSettings } from './connection';
import { installTemporalRuntime } from './runtime';

export const WORKFLOWS_PATH = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../workflows/index.ts',
);

export interface CreateWorkerOptions {
  /** Default: the standard Temporal settings (see `temporalSettings`); TLS and API key always come from there. */
  address?: string;
  namespace?: string;
  taskQueue?: string;
  /** A connection opened already (say, after waiting for the server); closed by `shutdown()`. */
  connection?: NativeConnection;
  activities: object;
  /** A prebuilt bundle, so tests and restarts skip webpack (several seconds). */
  workflowBundle?: WorkflowBundle;
  maxConcurrentActivityTaskExecutions?: number;
}

export interface RunningWorker {
  worker: Worker;
  connection: NativeConnection;
  /** Resolves when the worker has shut down. */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

const cachedBundles = new Map<boolean, Promise<WorkflowBundle>>();

/**
 * The workflow code bundled once per process; with tracing on, with Temporal's OpenTelemetry workflow
 * interceptors in it (a bundle's interceptors are fixed when it is built).
 */
export function workflowBundle(traced = activeTracing() !== null): Promise<WorkflowBundle> {
  let bundle = cachedBundles.get(traced);
  if (!bundle) {
    bundle = bundleWorkflowCode({
      workflowsPath: WORKFLOWS_PATH,
      logger: quietBundlerLogger,
      workflowInterceptorModules: traced
        ? [createRequire(import.meta.url).resolve(OTEL_WORKFLOW_MODULE)]
        : [],
    });
    cachedBundles.set(traced, bundle);
  }
  return bundle;
}

const OTEL_WORKFLOW_MODULE = '@temporalio/interceptors-opentelemetry/lib/workflow-interceptors';

/**
 * What a traced worker adds (the pieces of the package's OpenTelemetryPlugin, which would also try to add
 * workflow interceptors to a prebuilt bundle): activity spans that continue the workflow's trace, workflow
 * spans exported through a sink, and trace headers on the calls its own client makes.
 */
async function tracingOptions(): Promise<Partial<WorkerOptions>> {
  const tracing = activeTracing();
  if (!tracing) return {};
  const otel = await import('@temporalio/interceptors-opentelemetry');
  return {
    interceptors: {
      activity: [
        (ctx) => ({
          inbound: new otel.OpenTelemetryActivityInboundInterceptor(ctx),
          outbound: new otel.OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
    },
    sinks: { exporter: otel.makeWorkflowExporter(tracing.spanProcessor, tracing.resource) },
  };
}

const quietBundlerLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
};

export async function createWorker(options: CreateWorkerOptions): Promise<Worker> {
  installTemporalRuntime();
  const settings = temporalSettings({ address: options.address, namespace: options.namespace });
  let connection: NativeConnection;
  try {
    connection =
      options.connection ??
      (await NativeConnection.connect({ address: settings.address, ...settings.connection }));
  } catch (err) {
    throw new Error(
      `worker: no Temporal server reachable at ${settings.address} (${settings.security}): ${(err as Error).message}`,
    );
  }
  return Worker.create({
    connection,
    namespace: settings.namespace,
    taskQueue: options.taskQueue ?? TASK_QUEUE,
    workflowBundle: options.workflowBundle ?? (await workflowBundle()),
    activities: options.activities,
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivityTaskExecutions ?? 20,
    ...(await tracingOptions()),
  });
}

/** Creates a worker and runs it in the background until `shutdown()`. */
export async function startWorker(options: CreateWorkerOptions): Promise<RunningWorker> {
  const worker = await createWorker(options);
  const done = worker.run();
  return {
    worker,
    connection: worker.options.connection as NativeConnection,
    done,
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
      await (worker.options.connection as NativeConnection | undefined)?.close();
    },
  };
}
