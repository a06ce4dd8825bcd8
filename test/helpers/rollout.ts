/**
 * The shared setup of the rollout tests: spec builders, `until` with a deadline of its own, status polling,
 * the alert hook (a local HTTP server standing in for a channel configured on the worker), and history
 * recording (every history is replayed against the current code; RECORD_HISTORIES=1 keeps it as a fixture).
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import type { RolloutSpecInput } from '../../src/decision/config/rollout-spec';
import { workflowBundle } from '../../src/control-plane/temporal/worker';
import { rolloutWorkflow } from '../../workflows';
import { statusQuery, type RolloutStatus } from '../../workflows/messages';

export const FIXTURES = path.join(__dirname, '..', 'fixtures', 'histories');

/**
 * A spec at test speed for the end-to-end tests: production ladder and tests, checks every second, the
 * per-step sample minimums smaller.
 */
export function rolloutSpec(route: string, extra: Partial<RolloutSpecInput> = {}): RolloutSpecInput {
  return {
    route,
    candidate: 'openai:gpt-4o',
    actor: 'test',
    evaluation: { interval: '1s', scoreBatch: 1000 },
    triggers: { interval: '1s', minRequests: 20, minScores: 10 },
    bake: { duration: '2s' },
    policy: {
      policy: 'sequential',
      sequential: {
        promotion: { minCanaryScoredPerStep: 15, minCanaryRequestsPerStep: 20 },
        finalGate: { toleranceRel: 0.1 },
      },
    },
    ...extra,
  } as RolloutSpecInput;
}

/** Waits until `what` holds, polling, and fails by its own deadline naming `label` (never the suite's). */
export async function until(
  what: () => Promise<boolean> | boolean,
  label: string,
  timeoutMs = 60_000,
  pollMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await what())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Polls the status query until `what` holds; the error says where the rollout was instead. */
export async function waitForStatus(
  handle: WorkflowHandle,
  what: (s: RolloutStatus) => boolean,
  timeoutMs = 60_000,
): Promise<RolloutStatus> {
  let last: RolloutStatus | undefined;
  try {
    await until(
      async () => {
        last = await handle.query(statusQuery).catch(() => last);
        return !!last && what(last);
      },
      'the rollout status',
      timeoutMs,
      100,
    );
  } catch (err) {
    throw new Error(
      `${(err as Error).message}; last status: ${JSON.stringify(
        last && {
          phase: last.phase,
          share: last.shareBps,
          step: last.step,
          generation: last.generation,
          last: last.decisions.at(-1),
        },
      )}`,
    );
  }
  return last!;
}

export function startRollout(
  client: Client,
  taskQueue: string,
  route: string,
  spec: RolloutSpecInput,
  carried?: unknown,
) {
  return client.workflow.start(rolloutWorkflow, {
    taskQueue,
    workflowId: `rollout-${route}`,
    args: carried === undefined ? [spec] : ([spec, carried] as never),
  });
}

export interface AlertHook {
  /** The channels a worker should have (ALERT_CHANNELS): `test-hook` posts here. */
  channels: Record<string, { type: 'slack'; url: string }>;
  url: string;
  alertsOf(route: string): Array<{ kind: string; title: string }>;
  /** Every request that reached the server, with its path. */
  requests: Array<{ path: string; body: string }>;
  close(): Promise<void>;
}

/** A local HTTP server that records what it is sent: the worker's `test-hook` channel, or a forged URL. */
export async function startAlertHook(): Promise<AlertHook> {
  const byRoute = new Map<string, Array<{ kind: string; title: string }>>();
  const requests: Array<{ path: string; body: string }> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', body });
      try {
        const { event } = JSON.parse(body) as { event: { route: string; kind: string; title: string } };
        byRoute.set(event.route, [...(byRoute.get(event.route) ?? []), event]);
      } catch {
        // not an alert: recorded above all the same
      }
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    channels: { 'test-hook': { type: 'slack', url: `${url}/hook` } },
    url,
    alertsOf: (route) => byRoute.get(route) ?? [],
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * Replays a run's history against the current workflow code (it must replay, now and in every later
 * change); with a `name` and RECORD_HISTORIES=1 also keeps it as a fixture for test/replay.test.ts (the
 * fixtures come from test/rollout-stories.test.ts).
 */
export async function saveHistory(
  client: Client,
  workflowId: string,
  runId: string | undefined,
  name?: string,
): Promise<void> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowId);
  if (name && process.env.RECORD_HISTORIES) {
    fs.mkdirSync(FIXTURES, { recursive: true });
    // The same JSON form as `temporal workflow show --output json`, which the SDK's replayer reads back.
    fs.writeFileSync(path.join(FIXTURES, `${name}.json`), historyToJSON(history));
  }
}
