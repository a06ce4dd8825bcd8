import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rollbackUpdate, statusQuery } from '../workflows/messages';
import { startTestStack, type TestStack } from './helpers/stack';
import { waitForStatus } from './helpers/rollout';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'model-rollout.js');

/**
 * An eval step before any traffic, as a team starts it: `model-rollout start --spec` with a spec that names
 * the dataset file (examples/eval-support-bot.jsonl), the worker running both models through the real SDKs
 * to the simulator (answers in hundreds of ms), live traffic on the route while it runs.
 */
describe('the eval step', () => {
  let stack: TestStack;
  let dir: string;

  beforeAll(async () => {
    stack = await startTestStack({
      default: { latencyMs: { median: 250, p99: 800 }, accuracy: 1 },
      models: { 'gpt-4o-mini': { accuracy: 0.6 } },
    });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'eval-gate-'));
  });
  afterAll(async () => {
    await stack?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function start(route: string, candidate: string) {
    const spec = JSON.parse(fs.readFileSync(path.join(ROOT, 'examples', 'rollout-eval.json'), 'utf8'));
    Object.assign(spec, {
      route,
      candidate,
      evaluation: { interval: '1s', scoreBatch: 1000 },
      triggers: { interval: '1s', minRequests: 20, minScores: 10 },
    });
    spec.steps[0].eval.dataset = path.join(ROOT, 'examples', 'eval-support-bot.jsonl');
    const file = path.join(dir, `${route}.json`);
    fs.writeFileSync(file, JSON.stringify(spec));
    await run(process.execPath, [BIN, 'start', '--spec', file], {
      env: {
        ...process.env,
        DATABASE_URL: stack.db.connectionString,
        TEMPORAL_ADDRESS: stack.env.address,
        TEMPORAL_NAMESPACE: stack.env.namespace,
        TEMPORAL_TASK_QUEUE: stack.env.taskQueue,
        NO_COLOR: '1',
      },
    });
    return stack.client.workflow.getHandle(`rollout-${route}`);
  }
  const modelCalls = async (model: string) =>
    ((await (await fetch(`${stack.sim.url}/admin/stats`)).json()) as { byModel: Record<string, number> })
      .byModel[model] ?? 0;

  it('rolls back a candidate that fails the dataset before a single user request reaches it', async () => {
    const route = 'eval-worse';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 20);
    const handle = await start(route, 'openai:gpt-4o-mini');
    const outcome = await handle.result();
    await traffic.stop();

    expect(outcome.result).toBe('rolled_back');
    expect(outcome.reason).toMatch(
      /^eval gate: candidate passed \d+\/60 \([\d.]+%\), stable 60\/60 \(100\.0%\); 0 gained, \d+ lost; .* → candidate may be worse than stable by more than the margin; candidate failed /,
    );
    // The users: all answered by stable, none by the candidate.
    expect(traffic.stats().sent).toBeGreaterThan(20);
    expect(traffic.stats().byTarget['openai:gpt-4o-mini'] ?? 0).toBe(0);
    // The upstream: the candidate model was called exactly once per dataset item, by the eval alone.
    expect(await modelCalls('gpt-4o-mini')).toBe(60);
  }, 180_000);

  it('lets a candidate that passes go on to the canary, with the eval in its decisions', async () => {
    const route = 'eval-equal';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 20);
    const handle = await start(route, 'openai:gpt-4o');
    const status = await waitForStatus(handle, (s) => s.phase === 'canary' && s.shareBps === 500, 120_000);
    expect(status.decisions[0]).toMatchObject({ policy: 'eval-gate', action: 'promote-step' });
    expect(status.decisions[0].reasons[0]).toMatch(
      /^eval gate passed: candidate passed 60\/60 \(100\.0%\), stable 60\/60 \(100\.0%\); 0 gained, 0 lost/,
    );
    await handle.executeUpdate(rollbackUpdate, { args: [{ reason: 'seen enough', actor: 'test' }] });
    await handle.result();
    await traffic.stop();
    expect((await handle.query(statusQuery).catch(() => undefined))?.phase ?? 'rolled_back').toBe(
      'rolled_back',
    );
  }, 180_000);
});
