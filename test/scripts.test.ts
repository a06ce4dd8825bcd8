/**
 * The example scripts (`npx tsx scripts/...`) against the shared Temporal dev server, a fresh database and a
 * worker in this process: start a rollout, wait for it, roll it back; and wait for one that completes.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { createActivities } from '../activities';
import { parseRolloutSpec } from '../src/decision/config/rollout-spec';
import { createRoute, getRoute } from '../src/store/routing-state';
import type { RunningWorker } from '../src/control-plane/temporal/worker';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { temporalTestEnv } from './helpers/temporal';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('scripts', () => {
  const env = temporalTestEnv();
  let db: TestDatabase;
  let worker: RunningWorker;
  let client: Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    client = await env.client();
    worker = await env.worker(createActivities({ db, client, taskQueue: env.taskQueue }));
  });

  afterAll(async () => {
    for await (const w of client.workflow.list({
      query: `TaskQueue = '${env.taskQueue}' AND ExecutionStatus = 'Running'`,
    })) {
      await client.workflow
        .getHandle(w.workflowId)
        .terminate('test cleanup')
        .catch(() => {});
    }
    await worker?.shutdown();
    await client?.connection.close();
    await db?.close();
  });

  function script(name: string, ...args: string[]): Promise<Result> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [path.join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), `scripts/${name}.ts`, ...args],
        {
          cwd: ROOT,
          env: {
            ...process.env,
            TEMPORAL_ADDRESS: env.address,
            TEMPORAL_NAMESPACE: env.namespace,
            TEMPORAL_TASK_QUEUE: env.taskQueue,
            USER: 'ci',
          },
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => (stdout += c));
      child.stderr.on('data', (c) => (stderr += c));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  async function newRoute(prefix: string): Promise<string> {
    const name = `${prefix}-${crypto.randomBytes(3).toString('hex')}`;
    await createRoute(
      db.pool,
      { name, blue: { target: { provider: 'anthropic', model: 'claude-sonnet-4' }, fallbacks: [] } },
      { actor: 'test', reason: 'test route' },
    );
    return name;
  }

  it(
    'start-rollout starts one rollout per route; rollback returns once routing changed; wait-for-rollout exits 1',
    { timeout: 240_000 },
    async () => {
      const route = await newRoute('scr');
      const started = await script('start-rollout', route, 'openai:gpt-4o');
      expect(started.code, started.stderr).toBe(0);
      expect(started.stdout).toMatch(
        new RegExp(`^started rollout-${route} \\(run [0-9a-f-]+\\): openai:gpt-4o on ${route}`),
      );

      // Waiting begins while the rollout runs; the rollback ends it.
      const waiting = script('wait-for-rollout', route);
      const [again, badUsage] = await Promise.all([
        script('start-rollout', route, 'openai:gpt-4o'),
        script('rollback', route),
      ]);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain(`a rollout is already running on ${route}: rollout-${route}`);
      expect(badUsage.code).toBe(2);
      expect(badUsage.stderr).toContain('usage: npx tsx scripts/rollback.ts <route> <reason>');

      const rolledBack = await script('rollback', route, 'quality dropped');
      expect(rolledBack.code, rolledBack.stderr).toBe(0);
      expect(rolledBack.stdout).toContain(
        `rolled_back: anthropic:claude-sonnet-4 serves all traffic on ${route} again (canary share 0%)`,
      );
      expect(rolledBack.stdout).toContain('reason: quality dropped (by script:ci)');
      expect(await getRoute(db.pool, route)).toMatchObject({ canaryBps: 0, owner: null, stableSlot: 'blue' });

      const waited = await waiting;
      expect(waited.code).toBe(1);
      expect(waited.stdout).toContain('rolled_back: quality dropped (by script:ci)');
      expect(waited.stdout).toContain(`stable model on ${route}: anthropic:claude-sonnet-4`);

      const [nothingToRollBack, badSpec] = await Promise.all([
        script('rollback', route, 'again'),
        script('start-rollout', route, 'gpt-4o'),
      ]);
      expect(nothingToRollBack.code).toBe(1);
      expect(nothingToRollBack.stderr).toContain(`no running rollout on ${route}`);
      expect(badSpec.code).toBe(2);
      expect(badSpec.stderr).toContain('candidate.target: expected "provider:model"');
    },
  );

  it('wait-for-rollout exits 0 for a rollout that completes', { timeout: 180_000 }, async () => {
    const route = await newRoute('done');
    // A blue-green switch with a one-second bake completes on its own within seconds.
    const spec = parseRolloutSpec({
      route,
      candidate: 'openai:gpt-4o',
      strategy: 'blue-green',
      bake: { duration: '1s' },
      triggers: { interval: '1s' },
    });
    await client.workflow.start('rolloutWorkflow', {
      taskQueue: env.taskQueue,
      workflowId: `rollout-${route}`,
      args: [spec],
    });
    const waited = await script('wait-for-rollout', route);
    expect(waited.code, waited.stderr + waited.stdout).toBe(0);
    expect(waited.stdout).toContain('completed: openai:gpt-4o promoted to 100%');
    expect(waited.stdout).toContain(`stable model on ${route}: openai:gpt-4o`);
    await client.workflow
      .getHandle(`guardian-${route}`)
      .terminate('test cleanup')
      .catch(() => {});
  });
});
