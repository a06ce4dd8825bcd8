import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
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

let cachedBundle: Promise<WorkflowBundle> | undefined;

/** The workflow code bundled once per process. */
export function workflowBundle(): Promise<WorkflowBundle> {
  cachedBundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger });
  return cachedBundle;
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
