/**
 * Every example in docs/cli.md runs, in order, as written (through bash, with `model-rollout` on the PATH),
 * against the shared Temporal dev server, a fresh database and a worker in this process. An example ends with
 * the exit code its `# exit N` comment states (0 without one). Long-running ones (the simulator, the worker,
 * `status --watch`) are started, awaited until ready, and stopped with Ctrl-C, which must end them cleanly.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { createActivities } from '../activities';
import { buildProgram } from '../src/cli/main';
import { freePort } from '../src/store/database';
import { stopEmbeddedPostgres } from '../src/store/embedded-postgres';
import type { RunningWorker } from '../src/control-plane/temporal/worker';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { temporalTestEnv } from './helpers/temporal';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DOC = path.join(ROOT, 'docs', 'cli.md');

interface Example {
  line: string;
  expectedCode: number;
  longRunning: boolean;
  /** The `###` heading the example stands under. */
  section: string;
}

/** The commands of the fenced `sh` blocks, in order. */
function extractExamples(markdown: string): Example[] {
  const examples: Example[] = [];
  for (const block of markdown.matchAll(/^```sh\n([\s\S]*?)^```/gm)) {
    const headings = [...markdown.slice(0, block.index).matchAll(/^### (.+)$/gm)];
    const section = headings.at(-1)?.[1] ?? '';
    for (const raw of block[1].split('\n')) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const code = /#\s*exit (\d+)\s*$/.exec(line);
      examples.push({
        line,
        expectedCode: code ? Number(code[1]) : 0,
        longRunning: /model-rollout (dev|simulator|worker|gateway)\b|--watch\b/.test(line),
        section,
      });
    }
  }
  return examples;
}

/** What the prose around the examples promises they print. */
const PROMISES: Array<[RegExp, string]> = [
  [/routes set --file -/, 'blue.target: expected "provider:model" (e.g. "openai:gpt-4o"), got "gpt-4o"'],
  [/--steps 500,100 /, 'canary.steps: steps must be strictly increasing (--steps)'],
  [/claude-opus-4/, 'workflow rollout-support-bot, run '],
  [/no-such-route --candidate/, 'route "no-such-route" does not exist'],
  [/status no-such-route/, 'no workflow rollout-no-such-route or no-such-route'],
  [/model-rollout undo support-bot/, 'serves again since change'],
  [/model-rollout eval /, '--candidate: expected "provider:model" (e.g. "openai:gpt-4o"), got "gpt-4o"'],
  [/127\.0\.0\.1:7999/, 'no Temporal server reachable at 127.0.0.1:7999'],
  [/start support-bot --candidate openai:gpt-4o --fallback/, 'Temporal UI:'],
  [/promote support-bot$/, 'promoted: phase canary, canary share 5% -> 20%'],
  [/rollback support-bot --reason "answers got worse"$/, 'anthropic:claude-sonnet-4 serves all traffic'],
  [/promote support-bot --to-full/, 'awaiting-approval'],
  [/approve support-bot/, 'approved: phase awaiting-approval -> baking'],
  [/wait-for-rollout/, 'rolled_back: answers got worse'],
  [/start-rollout.ts --help/, 'usage: npx tsx scripts/start-rollout.ts <route> <provider:model>'],
  [/model-rollout migrate/, 'already applied'],
  [/routes release support-bot/, 'route support-bot has no owner'],
  [/model-rollout worker .*--health-port 9091/, 'health:    http://127.0.0.1:9091/livez'],
  [/model-rollout db start/, 'started: postgres://postgres@127.0.0.1:'],
  [/model-rollout db start/, 'password: in '],
  [/model-rollout db status/, 'embedded Postgres running at postgres://postgres@127.0.0.1:'],
  [/model-rollout db stop/, 'embedded Postgres stopped'],
  [
    /start --spec examples\/rollout-steps\.json/,
    '(canary: shadow 10% of stable requests (until 100 pairs) -> 1% -> 5% -> pause 1h -> 25% -> approval (within 4h, else rollback) -> 100% -> bake 1h, checked every 5m)',
  ],
];

describe('docs/cli.md', () => {
  const env = temporalTestEnv();
  let db: TestDatabase;
  let worker: RunningWorker;
  let client: Client;
  const shimDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-docs-'));
  // The `db` examples start and stop an embedded Postgres of their own, never the one the suite may run on.
  const pgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-docs-pg-'));
  fs.chmodSync(pgDir, 0o755);
  let pgPort = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    pgPort = await freePort();
    client = await env.client();
    worker = await env.worker(createActivities({ db, client, taskQueue: env.taskQueue }));
    // The examples use the fixed route support-bot: make sure no earlier run left its rollout going.
    await client.workflow
      .getHandle('rollout-support-bot')
      .terminate('docs test: fresh start')
      .catch(() => {});
    fs.writeFileSync(
      path.join(shimDir, 'model-rollout'),
      `#!/bin/sh\nexec "${process.execPath}" "${path.join(ROOT, 'bin', 'model-rollout.js')}" "$@"\n`,
      { mode: 0o755 },
    );
  });

  afterAll(async () => {
    await client?.workflow
      .getHandle('rollout-support-bot')
      .terminate('docs test cleanup')
      .catch(() => {});
    await worker?.shutdown();
    await client?.connection.close();
    await db?.close();
    await stopEmbeddedPostgres({ root: pgDir }).catch(() => {});
    fs.rmSync(shimDir, { recursive: true, force: true });
    fs.rmSync(pgDir, { recursive: true, force: true });
  });

  const runEnv = (line: string): NodeJS.ProcessEnv => ({
    ...process.env,
    PATH: `${shimDir}${path.delimiter}${process.env.PATH}`,
    TEMPORAL_ADDRESS: env.address,
    TEMPORAL_NAMESPACE: env.namespace,
    // A worker started by an example gets a queue of its own, so it takes no task from this file's worker.
    TEMPORAL_TASK_QUEUE: /model-rollout (worker|dev)\b/.test(line)
      ? `${env.taskQueue}-docs-worker`
      : env.taskQueue,
    DATABASE_URL: db.connectionString,
    MODEL_ROLLOUT_PG_DIR: pgDir,
    MODEL_ROLLOUT_PG_PORT: String(pgPort),
    NO_COLOR: '1',
  });

  it('shows every command and script', () => {
    const text = extractExamples(fs.readFileSync(DOC, 'utf8'))
      .map((e) => e.line)
      .join('\n');
    const program = buildProgram();
    const commands = program.commands.flatMap((c) => [
      c.name(),
      ...c.commands.filter((s) => s.name() !== 'list').map((s) => `${c.name()} ${s.name()}`),
    ]);
    expect(commands.length).toBeGreaterThan(15);
    for (const cmd of commands) expect(text, cmd).toMatch(new RegExp(`model-rollout ${cmd}\\b`));
    for (const script of ['start-rollout', 'rollback', 'wait-for-rollout'])
      expect(text).toContain(`scripts/${script}.ts`);
  });

  it('runs every example, in order, with the exit code it states', { timeout: 900_000 }, async () => {
    const examples = extractExamples(fs.readFileSync(DOC, 'utf8'));
    expect(examples.length).toBeGreaterThan(20);
    // "Run the pieces" starts long-running processes that share nothing with the rollout story that follows
    // (their own task queue, no route): that section runs beside the rest, each lane in its own order.
    const isPiece = (e: Example) => e.section === 'Run the pieces';
    await Promise.all([
      runInOrder(examples.filter(isPiece)),
      runInOrder(examples.filter((e) => !isPiece(e))),
    ]);
  });

  async function runInOrder(examples: Example[]): Promise<void> {
    for (const example of examples) {
      const started = Date.now();
      const result = example.longRunning
        ? await runUntilReadyThenInterrupt(example.line)
        : await run(example.line);
      console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] $ ${example.line}`);
      const shown = `$ ${example.line}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
      expect(result.code, shown).toBe(example.expectedCode);
      for (const [pattern, text] of PROMISES) {
        if (pattern.test(example.line)) expect(result.stdout + result.stderr, shown).toContain(text);
      }
    }
  }

  function run(line: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn('bash', ['-c', line], { cwd: ROOT, env: runEnv(line) });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => (stdout += c));
      child.stderr.on('data', (c) => (stderr += c));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** Starts a long-running example, waits until it says it is ready, then sends Ctrl-C. */
  async function runUntilReadyThenInterrupt(
    line: string,
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const child = spawn('bash', ['-c', `exec ${line}`], { cwd: ROOT, env: runEnv(line) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    const deadline = Date.now() + 180_000;
    while (
      !/Press Ctrl-C to stop|Temporal UI:/.test(stdout) &&
      child.exitCode === null &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGINT');
    return { code: await closed, stdout, stderr };
  }
});
