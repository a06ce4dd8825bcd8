import type { TestProject } from 'vitest/node';
import { freePort } from '../src/store/database';
import { ensureEmbeddedPostgres, stopEmbeddedPostgres } from '../src/store/embedded-postgres';
import { startTemporal, type TemporalServer } from '../src/control-plane/temporal/dev-server';

/**
 * One real Temporal dev server for the whole test run (or the one at TEMPORAL_ADDRESS), shared by every
 * test file through `inject('temporal')`. Test files isolate themselves with their own task queues.
 */
declare module 'vitest' {
  export interface ProvidedContext {
    temporal: { address: string; namespace: string; uiUrl?: string; cliPath?: string };
  }
}

let server: TemporalServer | undefined;
let startedPostgres = false;

export async function setup(project: TestProject): Promise<void> {
  if (!process.env.DATABASE_URL) {
    // Without DATABASE_URL the tests run on the checkout's embedded PostgreSQL, as a new contributor's would.
    const pg = await ensureEmbeddedPostgres({ progress: (m) => console.log(`[postgres] ${m}`) });
    startedPostgres = pg.started;
    console.log(`[postgres] ${pg.started ? 'started' : 'using the running'} embedded server at ${pg.url}`);
  }
  const port = await freePort();
  server = await startTemporal({
    ephemeral: true,
    port,
    uiPort: await freePort(),
    // Low enough that the route guardian's continue-as-new is exercised in a test of seconds.
    dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 120 },
    progress: (m) => console.log(`[temporal] ${m}`),
    readyTimeoutMs: 120_000,
    // The demo's workflow ids (rollout-support-bot) must not meet other tests' on the shared server.
    extraNamespaces: ['demo'],
  });
  project.provide('temporal', {
    address: server.address,
    namespace: server.namespace,
    uiUrl: server.uiUrl,
    cliPath: server.cliPath,
  });
}

export async function teardown(): Promise<void> {
  await server?.stop();
  // Leave a server that was already running (say, for `model-rollout dev`) as it was.
  if (startedPostgres) await stopEmbeddedPostgres();
}
