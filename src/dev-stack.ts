import { createActivities } from '../activities';
import { openDatabase, type Database } from './store/database';
import { migrate } from './store/migrate';
import { startTemporal, type TemporalServer } from './temporal/dev-server';
import { startWorker, type RunningWorker } from './temporal/worker';

/**
 * The local stack in one process tree: Temporal (dev server or TEMPORAL_ADDRESS), Postgres (DATABASE_URL or
 * embedded), migrations and a worker. Used by `model-rollout dev` and the demo.
 */
export interface DevStack {
  temporal: TemporalServer;
  db: Database;
  worker: RunningWorker;
  stop(): Promise<void>;
}

export interface DevStackOptions {
  temporalPort?: number;
  progress?: (message: string) => void;
}

export async function startDevStack(options: DevStackOptions = {}): Promise<DevStack> {
  const progress = options.progress ?? (() => {});
  const db = await openDatabase();
  const stops: Array<() => Promise<void>> = [() => db.close()];
  const stop = async () => {
    for (const fn of stops.reverse()) await fn().catch(() => {});
  };
  try {
    const migrated = await migrate(db.pool);
    progress(`Postgres ready (${db.embedded ? 'embedded' : db.url}); ${migrated.applied.length} migration(s) applied`);
    const temporal = await startTemporal({ port: options.temporalPort, progress });
    stops.push(() => temporal.stop());
    const worker = await startWorker({ address: temporal.address, namespace: temporal.namespace, activities: createActivities({ db }) });
    stops.push(() => worker.shutdown());
    progress('worker running');
    return { temporal, db, worker, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
