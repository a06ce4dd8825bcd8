/**
 * Alert channels: the worker knows the webhook URLs and the HMAC secret by channel name; a rollout names
 * channels. The URL and the secret must appear in no workflow history (every payload decoded), no activity
 * input, no database row and no log line of the worker, while the alerts still arrive, per kind, the
 * generic one signed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { verifySignature, SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../src/control-plane/alerts/channels';
import { rolloutWorkflow } from '../workflows';
import { pauseSignal, rollbackUpdate } from '../workflows/messages';
import { startTestStack, type TestStack } from './helpers/stack';
import { until, waitForStatus } from './helpers/rollout';

const SLACK_PATH = '/services/T0SECRET/B0SECRET/xoxSlackSecretToken';
const GENERIC_PATH = '/in/generic-secret-path-4711';
const HMAC_SECRET = 'hmac-secret-0123456789abcdef';

/** `promise`, or an error naming what did not happen within `ms` (not only the test's own timeout). */
async function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what()}`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

describe('alert channels named on the worker', () => {
  let stack: TestStack;
  let receiver: http.Server;
  let worker: ChildProcess | undefined;
  let workerOutput = '';
  const received: Received[] = [];
  const taskQueue = `alerts-${process.pid}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-alerts-'));
  let base = '';

  beforeAll(async () => {
    stack = await startTestStack({ default: { latencyMs: { median: 2 }, accuracy: 0.95 } });
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ path: req.url ?? '', headers: req.headers, body });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
    const channelsFile = path.join(tmp, 'alert-channels.json');
    fs.writeFileSync(
      channelsFile,
      JSON.stringify({
        'ops-slack': { type: 'slack', url: base + SLACK_PATH },
        pager: { type: 'webhook', url: base + GENERIC_PATH, secret: HMAC_SECRET },
      }),
    );
    // The worker in a process of its own, so every line it logs can be searched.
    worker = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(__dirname, 'helpers', 'worker-process.ts')],
      {
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: stack.env.address,
          DATABASE_URL: stack.db.connectionString,
          TEMPORAL_TASK_QUEUE: taskQueue,
          SIMULATOR_URL: stack.sim.url,
          ALERT_CHANNELS_FILE: channelsFile,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    worker.stderr!.on('data', (d: Buffer) => (workerOutput += d.toString()));
    await within(
      new Promise<void>((resolve, reject) => {
        worker!.stdout!.on('data', (d: Buffer) => {
          workerOutput += d.toString();
          if (workerOutput.includes('worker ready')) resolve();
        });
        worker!.once('exit', (code) => reject(new Error(`worker exited with ${code}: ${workerOutput}`)));
      }),
      60_000,
      () => `the worker process to log "worker ready" (its output so far: ${workerOutput.slice(-2000)})`,
    );
  }, 90_000);

  afterAll(async () => {
    worker?.kill('SIGKILL');
    receiver?.close();
    await stack?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('delivers per kind, signs the generic webhook, and the URLs and secret are nowhere in history, rows or logs', async () => {
    const route = 'alerted';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const handle = await stack.client.workflow.start(rolloutWorkflow, {
      taskQueue,
      workflowId: `rollout-${route}`,
      args: [
        {
          route,
          candidate: 'openai:gpt-4o',
          actor: 'test',
          evaluation: { interval: '1h' },
          triggers: { interval: '1h' },
          alerts: { channels: ['ops-slack', { name: 'pager', kinds: ['rollback'] }] },
        },
      ],
    });
    await waitForStatus(handle, (s) => s.phase === 'canary', 60_000);
    await handle.signal(pauseSignal, { actor: 'test', reason: 'look at it' });
    const outcome = await within(
      handle.executeUpdate(rollbackUpdate, { args: [{ reason: 'bad answers', actor: 'test' }] }),
      15_000,
      () => 'the rollback update to complete',
    );
    expect(outcome.result).toBe('rolled_back');
    await until(() => received.length >= 3, 'three alerts', 15_000);

    // Slack channel: every kind (the pause, then the rollback); pager: the rollback only, signed.
    const slack = received.filter((r) => r.path === SLACK_PATH).map((r) => JSON.parse(r.body));
    expect(slack.map((b) => b.event.kind).sort()).toEqual(['pause', 'rollback']);
    expect(slack[0].text).toMatch(/^\[model-rollout\] /);
    const pager = received.filter((r) => r.path === GENERIC_PATH);
    expect(pager).toHaveLength(1);
    expect(JSON.parse(pager[0].body).event).toMatchObject({ kind: 'rollback', route });
    const signature = String(pager[0].headers[SIGNATURE_HEADER]);
    const timestamp = String(pager[0].headers[TIMESTAMP_HEADER]);
    expect(verifySignature(HMAC_SECRET, timestamp, pager[0].body, signature)).toBe(true);
    expect(verifySignature('another-secret-0123456789', timestamp, pager[0].body, signature)).toBe(false);
    expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(60);

    const secrets = [SLACK_PATH, GENERIC_PATH, HMAC_SECRET, 'T0SECRET', 'generic-secret-path'];
    // The full history, with every payload (workflow input, activity inputs and results, signals,
    // updates, failures) decoded from base64.
    const history = historyToJSON(await handle.fetchHistory());
    const decoded = [...history.matchAll(/"data":\s*"([A-Za-z0-9+/=]+)"/g)]
      .map((m) => Buffer.from(m[1], 'base64').toString('utf8'))
      .join('\n');
    expect(decoded).toContain('"ops-slack"'); // the channel names are there: the decoding works
    expect(decoded).toContain('"pager"');
    for (const s of secrets) {
      expect(history).not.toContain(s);
      expect(decoded).not.toContain(s);
    }
    // Every row of every table (routing changes, decisions, events).
    const { rows: tables } = await stack.db.pool.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
    );
    let dump = '';
    for (const { table_name } of tables) {
      const { rows } = await stack.db.pool.query(`SELECT row_to_json(t)::text AS j FROM "${table_name}" t`);
      dump += rows.map((r) => r.j).join('\n');
    }
    expect(dump).toContain(route);
    for (const s of secrets) expect(dump).not.toContain(s);
    // The worker's log lines: the alerts are logged, their destinations are not.
    expect(workerOutput).toContain('Rolled back openai:gpt-4o');
    for (const s of secrets) expect(workerOutput).not.toContain(s);
  }, 90_000);

  it('a spec with a webhook URL is refused by the workflow, naming the field and the reason', async () => {
    const route = 'url-in-spec';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const error = await within(
      stack.client.workflow.execute(rolloutWorkflow, {
        taskQueue,
        workflowId: `rollout-${route}`,
        args: [{ route, candidate: 'openai:gpt-4o', alerts: { webhookUrl: base + SLACK_PATH } }],
      }),
      30_000,
      () =>
        'the rollout with a webhook URL in its spec to fail (it is still running: the URL was not refused)',
    ).catch((e: unknown) => e);
    expect(String(error)).not.toContain('timed out after');
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const message = String((error as WorkflowFailedError).cause?.message);
    expect(message).toContain('alerts.webhookUrl: a webhook URL is a secret');
    expect(message).not.toContain(SLACK_PATH);
  }, 60_000);
});
