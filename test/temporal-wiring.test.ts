import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { createActivities } from '../activities';
import { routeProbeWorkflow } from '../workflows';
import type { RunningWorker } from '../src/control-plane/temporal/worker';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { temporalTestEnv } from './helpers/temporal';

const run = promisify(execFile);

describe('Temporal dev server wiring', () => {
  const env = temporalTestEnv();
  let db: TestDatabase;
  let worker: RunningWorker;
  let client: Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    worker = await env.worker(createActivities({ db }));
    client = await env.client();
  });

  afterAll(async () => {
    await worker?.shutdown();
    await client?.connection.close();
    await db?.close();
  });

  it('runs a workflow whose activity reads Postgres', async () => {
    const route = `probe-${crypto.randomBytes(3).toString('hex')}`;
    await db.pool.query(
      `INSERT INTO routes (name, blue) VALUES ($1, '{"target":{"provider":"openai","model":"gpt-4o"},"fallbacks":[]}')`,
      [route],
    );
    const result = await client.workflow.execute(routeProbeWorkflow, {
      taskQueue: env.taskQueue,
      workflowId: `probe-${route}`,
      args: [route],
    });
    expect(result).toEqual({ route, exists: true, version: 1 });
  });

  it('makes the workflow findable by RolloutRoute with the project’s own temporal binary', async () => {
    const route = `listed-${crypto.randomBytes(3).toString('hex')}`;
    await client.workflow.execute(routeProbeWorkflow, {
      taskQueue: env.taskQueue,
      workflowId: `probe-${route}`,
      args: [route],
    });
    expect(env.cliPath, 'the dev server was started from the project’s CLI binary').toBeTruthy();
    // Visibility is eventually consistent: retry briefly.
    let listed = '';
    for (let i = 0; i < 40 && !listed.includes(`probe-${route}`); i++) {
      const { stdout } = await run(env.cliPath!, [
        'workflow',
        'list',
        '--address',
        env.address,
        '--namespace',
        env.namespace,
        '--query',
        `RolloutRoute='${route}'`,
        '--output',
        'json',
      ]);
      listed = stdout;
      if (!listed.includes(`probe-${route}`)) await new Promise((r) => setTimeout(r, 250));
    }
    expect(listed).toContain(`probe-${route}`);
  });

  it('serves the Temporal Web UI on its port', async () => {
    expect(env.uiUrl).toBeTruthy();
    const res = await fetch(env.uiUrl!);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/<html/i);
  });
});
