import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promoteUpdate, rollbackUpdate } from '../workflows/messages';
import { createRouter, type Router } from '../src/data-plane/router/router';
import { simulatorRegistry } from '../src/data-plane/providers/registry';
import { getRoute, listChanges } from '../src/store/routing-state';
import { RolloutPhase, RolloutRoute } from '../src/control-plane/temporal/search-attributes';
import { startTestStack, type TestStack } from './helpers/stack';
import { rolloutSpec, startRollout, until, waitForStatus } from './helpers/rollout';

const run = promisify(execFile);
const BIN = path.join(__dirname, '..', 'bin', 'model-rollout.js');

/**
 * `model-rollout undo` after a real rollout: the CLI binary against the shared Temporal server, a worker and
 * two routers (the test stack's, and a second one that only hears changes through NOTIFY, as a second
 * gateway would), answers from the simulator through the real SDKs.
 */
describe('undo after a completed rollout', () => {
  let stack: TestStack;
  let second: Router;

  beforeAll(async () => {
    stack = await startTestStack({ default: { latencyMs: { median: 250, p99: 800 }, accuracy: 0.95 } });
    second = await createRouter({
      database: stack.db,
      connectionString: stack.db.connectionString,
      providers: { registry: simulatorRegistry(stack.sim.url), breaker: false },
      // A poll far slower than the bound below: only the notification can make this router switch in time.
      cache: { pollIntervalMs: 600_000 },
      events: { flushIntervalMs: 20 },
    });
  });
  afterAll(async () => {
    await second?.close();
    await stack?.close();
  });

  const cli = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: stack.env.address,
          TEMPORAL_NAMESPACE: stack.env.namespace,
          TEMPORAL_TASK_QUEUE: stack.env.taskQueue,
          NO_COLOR: '1',
        },
      });
      return { code: 0, out: stdout + stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, out: e.stdout + e.stderr };
    }
  };
  const servedBy = async (router: Router, route: string) =>
    (await router.complete(route, { key: 'user-1', messages: [{ role: 'user', content: 'What is 2 + 2?' }] }))
      .target;
  const bothServe = (route: string, target: string) =>
    until(
      async () =>
        (await servedBy(stack.router, route)) === target && (await servedBy(second, route)) === target,
      `both routers to serve ${target}`,
      2000,
      20,
    );

  /** A rollout of `candidate` on `route` that completes: promoted by hand straight to 100%, then a 2 s bake. */
  async function promote(route: string, candidate: string) {
    const rollout = await startRollout(
      stack.client,
      stack.env.taskQueue,
      route,
      rolloutSpec(route, { candidate }),
    );
    await waitForStatus(rollout, (s) => s.phase === 'canary');
    await rollout.executeUpdate(promoteUpdate, { args: [{ toFull: true, actor: 'test' }] });
    expect((await rollout.result()).result).toBe('completed');
    await bothServe(route, candidate);
  }

  it('serves the previous model again at every router within 2 s, audited; refused past the window and once undone', async () => {
    const route = 'undo-me';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 20);

    // Nothing promoted yet: nothing to undo, and nothing changes.
    const early = await cli('undo', route);
    expect(early.code).toBe(1);
    expect(early.out).toContain(`route "${route}" has no promotion to undo`);

    await promote(route, 'openai:gpt-4o');
    const promoted = (await getRoute(stack.db.pool, route))!;

    // A window shorter than the promotion's age: refused, with the way out named; the route is untouched.
    const late = await cli('undo', route, '--window', '1ms');
    expect(late.code).toBe(1);
    expect(late.out).toMatch(/past the 1ms undo window; --force undoes it anyway/);
    expect((await getRoute(stack.db.pool, route))!.version).toBe(promoted.version);

    const undone = await cli('undo', route, '--reason', 'answers got worse after the upgrade');
    expect(undone.out).toMatch(
      /^undone: undo-me serves anthropic:claude-sonnet-4 again \(was openai:gpt-4o\)/m,
    );
    expect(undone.code).toBe(0);
    await bothServe(route, 'anthropic:claude-sonnet-4');

    // Audited in the routing log and in Temporal's history, found by its route like a rollout.
    const [change] = await listChanges(stack.db.pool, route, 1);
    expect(change.reason).toMatch(
      /^undo of change \d+ \(rollout-undo-me\): openai:gpt-4o -> anthropic:claude-sonnet-4: answers got worse/,
    );
    expect(change.after).toMatchObject({ stableSlot: 'blue', canaryBps: 0, owner: null });
    const undo = await stack.client.workflow.getHandle(`undo-${route}`).describe();
    expect(undo.status.name).toBe('COMPLETED');
    expect(undo.typedSearchAttributes.get(RolloutRoute)).toBe(route);
    expect(undo.typedSearchAttributes.get(RolloutPhase)).toBe('undo');

    // An undo is not a promotion: a second one has nothing to undo and changes nothing.
    const again = await cli('undo', route);
    expect(again.code).toBe(1);
    expect(again.out).toContain(
      `anthropic:claude-sonnet-4 serves again since change ${change.version} (cli:`,
    );
    expect(await servedBy(second, route)).toBe('anthropic:claude-sonnet-4');
    await traffic.stop();
  }, 180_000);

  it("refuses when a later rollout overwrote the previous model's slot; --force puts it back and serves it", async () => {
    const route = 'undo-overwritten';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    const traffic = stack.traffic(route, 20);
    await promote(route, 'openai:gpt-4o');

    // The next rollout's candidate goes into the slot Claude was kept in; it is rolled back.
    const next = await startRollout(
      stack.client,
      stack.env.taskQueue,
      route,
      rolloutSpec(route, { candidate: 'openai:gpt-4o-mini' }),
    );
    await waitForStatus(next, (s) => s.phase === 'canary');
    await next.executeUpdate(rollbackUpdate, { args: [{ reason: 'not this one', actor: 'test' }] });
    await next.result();

    const overwritten = await cli('undo', route);
    expect(overwritten.code).toBe(1);
    expect(overwritten.out).toContain(
      'the blue slot no longer holds anthropic:claude-sonnet-4 (it holds openai:gpt-4o-mini since a later change); --force puts anthropic:claude-sonnet-4 back into it',
    );
    expect(await servedBy(stack.router, route)).toBe('openai:gpt-4o');

    const forced = await cli('undo', route, '--force');
    expect(forced.code).toBe(0);
    expect(forced.out).toContain('the blue slot held openai:gpt-4o-mini (--force)');
    await bothServe(route, 'anthropic:claude-sonnet-4');
    expect((await getRoute(stack.db.pool, route))!.blue.target).toEqual({
      provider: 'anthropic',
      model: 'claude-sonnet-4',
    });
    await traffic.stop();
  }, 180_000);
});
