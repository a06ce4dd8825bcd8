import crypto from 'node:crypto';
import { inject } from 'vitest';
import { createClient } from '../../src/control-plane/temporal/connection';
import { startWorker, type RunningWorker } from '../../src/control-plane/temporal/worker';

/** The shared dev server from global-setup, plus a task queue of this test file's own. */
export function temporalTestEnv() {
  const server = inject('temporal');
  const taskQueue = `test-${crypto.randomBytes(4).toString('hex')}`;
  return {
    ...server,
    taskQueue,
    client: () => createClient({ address: server.address, namespace: server.namespace }),
    worker: (activities: object): Promise<RunningWorker> =>
      startWorker({ address: server.address, namespace: server.namespace, taskQueue, activities }),
  };
}
