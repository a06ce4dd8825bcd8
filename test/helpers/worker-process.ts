/**
 * A worker in a process of its own, so a test can SIGKILL it mid-rollout and start it again.
 * Env: TEMPORAL_ADDRESS, DATABASE_URL, TEMPORAL_TASK_QUEUE, SIMULATOR_URL.
 */
import { createActivities } from '../../activities';
import { createFallbackChain } from '../../src/data-plane/providers/fallback-chain';
import { simulatorRegistry } from '../../src/data-plane/providers/registry';
import { openDatabase } from '../../src/store/database';
import { createClient } from '../../src/control-plane/temporal/connection';
import { startWorker } from '../../src/control-plane/temporal/worker';

const db = await openDatabase({ url: process.env.DATABASE_URL });
const client = await createClient({ address: process.env.TEMPORAL_ADDRESS });
const chain = createFallbackChain({ registry: simulatorRegistry(process.env.SIMULATOR_URL!) });
await startWorker({
  address: process.env.TEMPORAL_ADDRESS!,
  taskQueue: process.env.TEMPORAL_TASK_QUEUE,
  activities: createActivities({ db, chain, client, taskQueue: process.env.TEMPORAL_TASK_QUEUE }),
});
console.log('worker ready');
