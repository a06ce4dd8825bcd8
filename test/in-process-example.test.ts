/**
 * examples/in-process/app.ts, the support bot that routes in-process with `createRouter` (imported as
 * `model-rollout`, the package's own name), against the provider simulator and a real Postgres: its users
 * are split between the route's two models by the canary share and stay on their arm, every answer is a
 * request event the rollouts' statistics read, and a rollback written to the database reaches the running
 * application within a second. Run as a script, it answers a question from the command line.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSupportBot, type SupportBot } from '../examples/in-process/app';
import { parseTargetWithFallbacks } from '../src/decision/config/target';
import { startSimulator, type SimulatorHandle } from '../src/tooling/simulator';
import { changeRoute, createRoute, getRoute } from '../src/store/routing-state';
import { ROOT } from './helpers/cli-process';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { OPEN_PROMPTS } from './helpers/open-prompts';

const STABLE = 'anthropic:claude-sonnet-4';
const CANDIDATE = 'openai:gpt-4o';

describe('examples/in-process: an application that routes without a gateway', () => {
  let db: TestDatabase;
  let sim: SimulatorHandle;
  let bot: SupportBot;

  beforeAll(async () => {
    db = await createTestDatabase();
    // Real providers answer in about a second; so does the simulator here.
    sim = await startSimulator({ scenario: { seed: 7, default: { latencyMs: { median: 300, p99: 1200 } } } });
    await createRoute(
      db.pool,
      {
        name: 'support-bot',
        blue: parseTargetWithFallbacks({ target: STABLE, fallbacks: ['openai:gpt-4o-mini'] }),
        green: parseTargetWithFallbacks({ target: CANDIDATE }),
        canaryBps: 5000,
      },
      { actor: 'test', reason: 'half of the users on the candidate' },
    );
    bot = await createSupportBot({ databaseUrl: db.connectionString, simulatorUrl: sim.url });
  });

  afterAll(async () => {
    await bot?.close();
    await sim?.close();
    await db?.close();
  });

  it('splits users between the two models by the canary share, each user staying on one', async () => {
    const users = Array.from({ length: 40 }, (_, i) => `customer-${i}`);
    const first = await Promise.all(
      users.map((u, i) => bot.answer(u, OPEN_PROMPTS[i % OPEN_PROMPTS.length])),
    );
    const again = await Promise.all(
      users.map((u, i) => bot.answer(u, OPEN_PROMPTS[(i + 7) % OPEN_PROMPTS.length])),
    );
    for (const answer of first) {
      expect(answer.text.length).toBeGreaterThan(0);
      expect(answer.model).toBe(answer.arm === 'canary' ? CANDIDATE : STABLE);
    }
    const canary = first.filter((a) => a.arm === 'canary').length;
    expect(canary).toBeGreaterThan(8); // 20 expected of 40 at 50%
    expect(canary).toBeLessThan(32);
    expect(again.map((a) => a.arm)).toEqual(first.map((a) => a.arm));
  }, 120_000);

  it('records each answer as a request event, by its request id, for the rollouts to read', async () => {
    const answer = await bot.answer('customer-events', 'Where do I find my invoices?');
    // Events are written in batches; they are in Postgres within a second or two.
    const deadline = Date.now() + 10_000;
    let rows: { route: string; tag: string; target: string; caller: string | null }[] = [];
    while (rows.length === 0 && Date.now() < deadline) {
      ({ rows } = await db.pool.query(
        'SELECT route, tag, target, caller FROM request_events WHERE request_id = $1',
        [answer.requestId],
      ));
      if (rows.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
    expect(rows).toEqual([
      { route: 'support-bot', tag: answer.arm, target: answer.model, caller: 'support-app' },
    ]);
  }, 60_000);

  it('follows a rollback written to the database within a second, without a restart', async () => {
    // A user the canary share put on the candidate.
    let user = '';
    for (let i = 0; !user; i++)
      if ((await bot.answer(`probe-${i}`, OPEN_PROMPTS[i % OPEN_PROMPTS.length])).arm === 'canary')
        user = `probe-${i}`;
    const before = await getRoute(db.pool, 'support-bot');
    await changeRoute(db.pool, 'support-bot', {
      expectedVersion: before!.version,
      patch: { canaryBps: 0 },
      actor: 'test',
      reason: 'rollback: the candidate answers worse',
    });
    const rolledBackAt = Date.now();
    // Asked again and again: the routing is decided when a question is asked, so the first question routed to
    // stable says when the rollback reached this process.
    let askedAt = 0;
    for (let i = 0; ; i++) {
      askedAt = Date.now() - rolledBackAt;
      const answer = await bot.answer(user, OPEN_PROMPTS[i % OPEN_PROMPTS.length]);
      if (answer.arm === 'stable') {
        expect(answer.model).toBe(STABLE);
        break;
      }
      expect(askedAt, 'still on the candidate after the rollback').toBeLessThan(5_000);
    }
    expect(askedAt).toBeLessThan(1_000);
    const after = await Promise.all(
      Array.from({ length: 20 }, (_, i) => bot.answer(`customer-${i}`, OPEN_PROMPTS[i])),
    );
    expect(after.every((a) => a.arm === 'stable' && a.model === STABLE)).toBe(true);
  }, 60_000);

  it('answers a question from the command line', async () => {
    const output = await new Promise<{ code: number | null; text: string }>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          'examples/in-process/app.ts',
          '--user',
          'alice',
          '--simulator',
          sim.url,
          'Can I change my plan?',
        ],
        { cwd: ROOT, env: { ...process.env, DATABASE_URL: db.connectionString } },
      );
      let text = '';
      child.stdout.on('data', (c) => (text += c));
      child.stderr.on('data', (c) => (text += c));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, text }));
    });
    expect(output.code, output.text).toBe(0);
    expect(output.text).toMatch(new RegExp(`^${STABLE} \\(stable, request [\\w-]+\\):\\n.+`));
  }, 60_000);
});
