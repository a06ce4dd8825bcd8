import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { TestStack } from './stack';

/**
 * Starts `worker-process.ts` as a child process on the stack's Temporal, database and simulator, and resolves
 * once it says it is ready; a test can then SIGKILL it mid-rollout and start another. `temporalAddress`
 * puts something (a proxy) between the worker and the dev server.
 */
export function startWorkerProcess(
  stack: TestStack,
  taskQueue: string,
  options: { temporalAddress?: string } = {},
): Promise<ChildProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'worker-process.ts')], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: options.temporalAddress ?? stack.env.address,
      DATABASE_URL: stack.db.connectionString,
      TEMPORAL_TASK_QUEUE: taskQueue,
      SIMULATOR_URL: stack.sim.url,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => d.toString().includes('worker ready') && resolve(proc));
    proc.once('exit', (code) => reject(new Error(`worker process exited with ${code}`)));
  });
}
