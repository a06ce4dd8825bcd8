/**
 * The operator CLI end to end: the real binary (`node bin/model-rollout.js`) spawned against the shared
 * Temporal dev server and a fresh Postgres database, with a worker in this process on this file's task queue.
 * Rollouts use 1h evaluation and trigger intervals, so nothing moves unless a command moves it.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { createActivities } from '../activities';
import type { AlertChannel } from '../src/control-plane/alerts/channels';
import { inlineEvalDatasets } from '../src/decision/eval/inline-datasets';
import { parseRolloutSpec } from '../src/decision/config/rollout-spec';
import { parseRouteConfig } from '../src/cli/route-config';
import { renderStatus, type StatusView } from '../src/cli/commands/status';
import { pairStats, progressBar, share } from '../src/cli/format';
import { buildProgram } from '../src/cli/main';
import { freePort } from '../src/store/database';
import { changeRoute, getRoute } from '../src/store/routing-state';
import type { RunningWorker } from '../src/control-plane/temporal/worker';
import type { RolloutStatus } from '../workflows/messages';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { temporalTestEnv } from './helpers/temporal';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'model-rollout.js');
const UI = 'http://127.0.0.1:18233';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

const env = temporalTestEnv();
let db: TestDatabase;
let worker: RunningWorker;
let client: Client;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-cli-'));

function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    TEMPORAL_ADDRESS: env.address,
    TEMPORAL_NAMESPACE: env.namespace,
    TEMPORAL_TASK_QUEUE: env.taskQueue,
    TEMPORAL_UI_URL: UI,
    DATABASE_URL: db.connectionString,
    USER: 'tester',
    NO_COLOR: '1',
    ...extra,
  };
}

/** Runs the CLI to completion. */
function cli(
  args: string[],
  options: { env?: Record<string, string>; input?: string } = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: cliEnv(options.env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** Starts a long-running CLI command; `until` waits for output, `stop` sends SIGINT and returns the result. */
function cliBackground(args: string[], options: { env?: Record<string, string> } = {}) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: cliEnv(options.env) });
  const result: Result = { code: null, stdout: '', stderr: '' };
  child.stdout.on('data', (c) => (result.stdout += c));
  child.stderr.on('data', (c) => (result.stderr += c));
  const exited = new Promise<Result>((resolve) => child.on('close', (code) => resolve({ ...result, code })));
  return {
    result,
    exited,
    async until(pattern: RegExp, timeoutMs = 90_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(result.stdout)) {
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(
            `no ${pattern} in output (exit ${child.exitCode}):\n${result.stdout}\n${result.stderr}`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop(): Promise<Result> {
      child.kill('SIGINT');
      return exited;
    },
  };
}

const json = <T = Record<string, unknown>>(r: Result): T => {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
};
const newRoute = (prefix: string) => `${prefix}-${crypto.randomBytes(3).toString('hex')}`;
const writeJson = (name: string, value: unknown) => {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, JSON.stringify(value));
  return file;
};
async function createRoute(name: string): Promise<void> {
  const file = writeJson(`${name}.json`, {
    name,
    blue: { target: 'anthropic:claude-sonnet-4', fallbacks: ['openai:gpt-4o-mini'] },
  });
  const r = await cli(['routes', 'set', '--file', file, '--reason', 'test route']);
  expect(r.code, r.stderr).toBe(0);
}
async function status(route: string): Promise<RolloutStatus & { execution: string }> {
  const view = json<{ status: RolloutStatus; execution: string }>(await cli(['status', route, '--json']));
  return { ...view.status, execution: view.execution };
}
/** Starts a rollout that never moves by itself. */
async function startQuiet(route: string, ...extra: string[]): Promise<Result> {
  return cli([
    'start',
    route,
    '--candidate',
    'openai:gpt-4o',
    '--interval',
    '1h',
    '--trigger-interval',
    '1h',
    ...extra,
  ]);
}
async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** The worker's alert channels; a test adds its receiver's URL under a name before it starts a rollout. */
const alertChannels = new Map<string, AlertChannel>();

beforeAll(async () => {
  db = await createTestDatabase();
  client = await env.client();
  worker = await env.worker(createActivities({ db, client, taskQueue: env.taskQueue, alertChannels }));
});

afterAll(async () => {
  // Leave no rollout running on the shared server.
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
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('routes', () => {
  it(
    'set / list / show round-trip, edits by compare-and-set, and reports a concurrent change',
    { timeout: 180_000 },
    async () => {
      const name = newRoute('rt');
      const file = writeJson('rt.json', {
        name,
        blue: { target: 'anthropic:claude-sonnet-4', fallbacks: ['openai:gpt-4o-mini'] },
      });
      const created = await cli([
        'routes',
        'set',
        '--file',
        file,
        '--actor',
        'cli:alice',
        '--reason',
        'new support bot',
      ]);
      expect(created.code, created.stderr).toBe(0);
      expect(created.stdout).toContain(`route ${name}: created at version 1`);

      const [listed, listedText, shown] = await Promise.all([
        cli(['routes', '--json']),
        cli(['routes']),
        cli(['routes', 'show', name, '--json']),
      ]);
      expect(json<Array<{ name: string }>>(listed).map((r) => r.name)).toContain(name);
      expect(listedText.stdout).toMatch(
        new RegExp(`${name}\\s+anthropic:claude-sonnet-4 \\(blue\\)\\s+-\\s+0%\\s+0%\\s+1\\s+-`),
      );
      const show = json<{
        route: Record<string, unknown>;
        changes: Array<{ actor: string; reason: string; version: number }>;
      }>(shown);
      expect(show.route).toMatchObject({
        name,
        blue: {
          target: { provider: 'anthropic', model: 'claude-sonnet-4' },
          fallbacks: [{ provider: 'openai', model: 'gpt-4o-mini' }],
        },
        green: null,
        stableSlot: 'blue',
        canaryBps: 0,
        shadowRate: 0,
        version: 1,
        owner: null,
      });
      expect(show.changes).toEqual([
        expect.objectContaining({ version: 1, actor: 'cli:alice', reason: 'new support bot' }),
      ]);

      // An edit: add the green slot and make it stable (a manual blue-green switch).
      const edit = writeJson('rt-edit.json', {
        name,
        blue: { target: 'anthropic:claude-sonnet-4', fallbacks: ['openai:gpt-4o-mini'] },
        green: 'openai:gpt-4o',
        stable: 'green',
      });
      const edited = await cli(['routes', 'set', '--file', edit, '--reason', 'switch to gpt-4o']);
      expect(edited.code, edited.stderr).toBe(0);
      expect(edited.stdout).toContain('green - => openai:gpt-4o');
      expect(edited.stdout).toContain('stable blue => green');
      expect(edited.stdout).toContain('version 1 -> 2');

      const [again, stale, showText] = await Promise.all([
        cli(['routes', 'set', '--file', edit]),
        // Someone based an edit (back to blue) on version 1; the route is at 2 now: reported, not overwritten.
        cli([
          'routes',
          'set',
          '--file',
          writeJson('rt-stale.json', { name, blue: 'anthropic:claude-sonnet-4', stable: 'blue' }),
          '--expected-version',
          '1',
        ]),
        cli(['routes', 'show', name]),
      ]);
      expect(again.stdout).toContain(`route ${name}: no change (version 2)`);
      expect(stale.code).toBe(1);
      expect(stale.stderr).toContain(`route "${name}" changed since version 1 (it is now at version 2`);
      expect(stale.stderr).toContain('nothing was written');
      expect(showText.stdout).toMatch(/green\s+openai:gpt-4o\s+\[stable\]/);
      expect(showText.stdout).toMatch(/stable side\s+green \(openai:gpt-4o\)/);
      expect(showText.stdout).toMatch(/v2 .* cli:tester\s+switch to gpt-4o/);
      expect((await getRoute(db.pool, name))?.version).toBe(2);
    },
  );

  it(
    'refuses an invalid route config with exit 2, naming the field and the reason',
    { timeout: 120_000 },
    async () => {
      const [badTarget, unknownField, notJson, missing, unknownRoute] = await Promise.all([
        cli(['routes', 'set', '--file', '-'], { input: JSON.stringify({ name: 'x1', blue: 'gpt-4o' }) }),
        cli(['routes', 'set', '--file', '-'], {
          input: JSON.stringify({ name: 'x2', blue: 'openai:gpt-4o', stable: 'green', colour: 'red' }),
        }),
        cli(['routes', 'set', '--file', '-'], { input: '{ nope' }),
        cli(['routes', 'set', '--file', path.join(tmp, 'missing.json')]),
        cli(['routes', 'show', 'no-such-route']),
      ]);
      expect(badTarget.code).toBe(2);
      expect(badTarget.stderr).toContain(
        'blue.target: expected "provider:model" (e.g. "openai:gpt-4o"), got "gpt-4o"',
      );
      expect(unknownField.code).toBe(2);
      expect(unknownField.stderr).toContain('colour: unknown field');
      expect(unknownField.stderr).toContain('green: is required when stable is "green"');
      expect(notJson.code).toBe(2);
      expect(notJson.stderr).toContain('is not valid JSON');
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('cannot read');
      expect(unknownRoute.code).toBe(1);
      expect(unknownRoute.stderr).toContain('route "no-such-route" does not exist');
      expect(await getRoute(db.pool, 'x1')).toBeUndefined();
    },
  );
});

describe('routes release', () => {
  it(
    'frees a route left owned by a terminated rollout; refuses while the rollout runs; says when there is nothing to do',
    { timeout: 180_000 },
    async () => {
      const route = newRoute('rel');
      await createRoute(route);
      expect((await startQuiet(route)).code).toBe(0);
      const claimed = await until(
        () => getRoute(db.pool, route),
        (s) => s?.canaryBps === 500,
      );
      expect(claimed).toMatchObject({ owner: `rollout-${route}`, canaryBps: 500 });

      const [running, noReason, unknown] = await Promise.all([
        cli(['routes', 'release', route, '--reason', 'too early']),
        cli(['routes', 'release', route]),
        cli(['routes', 'release', 'no-such-route', '--reason', 'x']),
      ]);
      expect(running.code).toBe(1);
      expect(running.stderr).toContain(`rollout rollout-${route}`);
      expect(running.stderr).toContain('is still running and owns the route: roll it back');
      expect(noReason.code).toBe(2);
      expect(noReason.stderr).toContain("required option '--reason <text>' not specified");
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('route "no-such-route" does not exist');
      expect(await getRoute(db.pool, route)).toMatchObject({ owner: `rollout-${route}`, canaryBps: 500 });

      // Terminated: no cleanup runs, the route stays owned with the canary on, and a new start is refused.
      await client.workflow.getHandle(`rollout-${route}`).terminate('operator pulled the plug');
      expect(await getRoute(db.pool, route)).toMatchObject({ owner: `rollout-${route}`, canaryBps: 500 });
      expect((await startQuiet(route)).stderr).toContain('which is not running (terminated)');

      const released = await cli([
        'routes',
        'release',
        route,
        '--reason',
        'rollout terminated by hand',
        '--actor',
        'cli:frank',
      ]);
      expect(released.code, released.stderr).toBe(0);
      expect(released.stdout).toContain(
        `route ${route} released: owner rollout-${route} (terminated) -> none; canary share 5% -> 0%; version`,
      );
      expect(released.stdout).toContain('stable: anthropic:claude-sonnet-4 (blue) serves all traffic');
      const after = await getRoute(db.pool, route);
      expect(after).toMatchObject({
        owner: null,
        canaryBps: 0,
        shadowRate: 0,
        stableSlot: 'blue',
        version: claimed!.version + 1,
      });
      const audit = json<{ changes: Array<{ reason: string; actor: string }> }>(
        await cli(['routes', 'show', route, '--json']),
      );
      expect(audit.changes[0]).toMatchObject({
        actor: 'cli:frank',
        reason: `released from rollout-${route} (terminated): rollout terminated by hand (by cli:frank)`,
      });

      const again = await cli(['routes', 'release', route, '--reason', 'again']);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain(
        `route ${route} has no owner (version ${after!.version}); nothing to release`,
      );
      // The route is free again: a new rollout can start on it.
      expect((await startQuiet(route)).code).toBe(0);

      // Temporal unreachable: the owner cannot be checked, so only --force releases (and the audit says so).
      const orphan = newRoute('rel-orphan');
      await createRoute(orphan);
      const state0 = (await getRoute(db.pool, orphan))!;
      await changeRoute(db.pool, orphan, {
        expectedVersion: state0.version,
        patch: {
          owner: `rollout-${orphan}`,
          green: { target: { provider: 'openai', model: 'gpt-4o' }, fallbacks: [] },
          shadowRate: 0.25,
        },
        actor: 'test',
        reason: 'simulate a rollout that went away',
      });
      const dead = { TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` };
      const unchecked = await cli(['routes', 'release', orphan, '--reason', 'cleanup'], { env: dead });
      expect(unchecked.code).toBe(1);
      expect(unchecked.stderr).toContain(`cannot check that rollout rollout-${orphan} is no longer running`);
      expect(unchecked.stderr).toContain('Pass --force');
      expect((await getRoute(db.pool, orphan))!.owner).toBe(`rollout-${orphan}`);
      const forced = await cli(['routes', 'release', orphan, '--reason', 'cleanup', '--force', '--json'], {
        env: dead,
      });
      const out = json<{ route: { owner: string | null; shadowRate: number }; changes: string[] }>(forced);
      expect(out.route).toMatchObject({ owner: null, shadowRate: 0 });
      expect(out.changes[0]).toBe(
        `owner rollout-${orphan} (not checked: Temporal unreachable, --force) -> none`,
      );
      expect(out.changes).toContain('shadow rate 25% -> 0%');
    },
  );
});

describe('start', () => {
  it(
    'prints the workflow id and UI link; a second start names the running one; bad input is refused',
    { timeout: 180_000 },
    async () => {
      const route = newRoute('start');
      await createRoute(route);
      const started = await startQuiet(route);
      expect(started.code, started.stderr).toBe(0);
      expect(started.stdout).toContain(`workflow id:  rollout-${route}`);
      expect(started.stdout).toContain(
        `Temporal UI:  ${UI}/namespaces/${env.namespace}/workflows/rollout-${route}`,
      );
      const runId = /run id:\s+(\S+)/.exec(started.stdout)![1];

      const [second, badSteps, unknown, noCandidate, badRate] = await Promise.all([
        cli(['start', route, '--candidate', 'anthropic:claude-opus-4']),
        cli(['start', route, '--candidate', 'openai:gpt-4o', '--steps', '500,100']),
        cli(['start', 'no-such-route', '--candidate', 'openai:gpt-4o']),
        cli(['start', route]),
        cli(['start', route, '--candidate', 'openai', '--shadow-rate', '1.5']),
      ]);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(
        `a rollout is already running on route "${route}": workflow rollout-${route}, run ${runId}`,
      );
      expect(badSteps.code).toBe(2);
      expect(badSteps.stderr).toContain('canary.steps: steps must be strictly increasing (--steps)');
      expect(badSteps.stderr).toContain('canary.steps: steps must end at 10000 (--steps)');
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('route "no-such-route" does not exist');
      expect(unknown.stderr).toContain('routes set --file');
      expect(noCandidate.code).toBe(2);
      expect(noCandidate.stderr).toContain('--candidate');
      expect(badRate.code).toBe(2);
      expect(badRate.stderr).toMatch(/candidate\.target: expected "provider:model".*\(--candidate/);
      expect(badRate.stderr).toMatch(/shadow\.rate: .*1.*\(--shadow-rate\)/);

      // A route still owned by a rollout that is gone (say, terminated before its cleanup) is reported.
      const orphan = newRoute('orphan');
      await createRoute(orphan);
      const state0 = (await getRoute(db.pool, orphan))!;
      await changeRoute(db.pool, orphan, {
        expectedVersion: state0.version,
        patch: { owner: `rollout-${orphan}` },
        actor: 'test',
        reason: 'simulate a terminated rollout',
      });
      const orphaned = await startQuiet(orphan);
      expect(orphaned.code).toBe(1);
      expect(orphaned.stderr).toContain(
        `route "${orphan}" is still owned by rollout-${orphan}, which is not running (unknown to Temporal)`,
      );

      // The rollout claimed the route with the candidate in the green slot.
      const state = await until(
        () => getRoute(db.pool, route),
        (s) => s?.canaryBps === 500,
      );
      expect(state).toMatchObject({
        owner: `rollout-${route}`,
        canaryBps: 500,
        green: { target: { provider: 'openai', model: 'gpt-4o' } },
      });
    },
  );

  it('takes a spec file, with flags overriding it, and prints JSON', { timeout: 120_000 }, async () => {
    const route = newRoute('spec');
    await createRoute(route);
    const spec = JSON.parse(fs.readFileSync(path.join(ROOT, 'examples', 'rollout-canary.json'), 'utf8'));
    const file = writeJson('spec.json', { ...spec, route });
    const r = json<{
      workflowId: string;
      runId: string;
      uiUrl: string;
      spec: { steps: Array<Record<string, unknown>>; evaluation: { interval: number }; actor: string };
    }>(
      await cli([
        'start',
        '--spec',
        file,
        '--interval',
        '1h',
        '--trigger-interval',
        '1h',
        '--steps',
        '10%,100%',
        '--actor',
        'cli:bob',
        '--json',
      ]),
    );
    expect(r.workflowId).toBe(`rollout-${route}`);
    expect(r.uiUrl).toBe(`${UI}/namespaces/${env.namespace}/workflows/rollout-${route}`);
    // The flags' ladder made the default step list: 10%, the promotion, the spec's bake.
    expect(r.spec.steps).toEqual([
      { setShare: 1000 },
      { setShare: 10000 },
      { bake: { duration: 1_800_000 } },
    ]);
    expect(r.spec.evaluation.interval).toBe(3_600_000);
    expect(r.spec.actor).toBe('cli:bob');
    const described = await client.workflow.getHandle(r.workflowId).describe();
    expect(described.runId).toBe(r.runId);
  });

  it('takes the evaluators as flags, and names the flag of a bad one', { timeout: 120_000 }, async () => {
    const route = newRoute('evals');
    await createRoute(route);
    const rubric = path.join(tmp, 'rubric.txt');
    fs.writeFileSync(
      rubric,
      'Score the support answer 1-5 for accuracy and tone. Reply with the digit only.',
    );
    const schema = writeJson('schema.json', { type: 'object', required: ['answer'] });
    const [badJudge, rubricAlone, badRegex] = await Promise.all([
      cli(['start', route, '--candidate', 'openai:gpt-4o', '--judge', 'gpt-4o-mini']),
      cli(['start', route, '--candidate', 'openai:gpt-4o', '--judge-rubric', rubric]),
      cli(['start', route, '--candidate', 'openai:gpt-4o', '--check-regex', '(unclosed']),
    ]);
    expect(badJudge.code).toBe(2);
    expect(badJudge.stderr).toMatch(/evaluation\.judge: expected "provider:model".*\(--judge\)/);
    expect(rubricAlone.code).toBe(2);
    expect(rubricAlone.stderr).toContain('--judge-rubric needs --judge');
    expect(badRegex.code).toBe(2);
    expect(badRegex.stderr).toContain('regex is not a valid regular expression');

    const r = json<{ spec: { evaluation: Record<string, unknown> } }>(
      await cli([
        'start',
        route,
        '--candidate',
        'openai:gpt-4o',
        '--judge',
        'openai:gpt-4o-mini',
        '--judge-rubric',
        rubric,
        '--eval-http',
        'evals',
        '--check-json-schema',
        schema,
        '--check-max-length',
        '2000',
        '--judge-budget',
        '2.5',
        '--judge-sample',
        '0.1',
        '--evidence-timeout',
        '20m',
        '--json',
      ]),
    );
    expect(r.spec.evaluation).toMatchObject({
      evaluators: [
        {
          kind: 'judge',
          target: { provider: 'openai', model: 'gpt-4o-mini' },
          rubric: expect.stringContaining('accuracy and tone'),
          weight: 1,
        },
        { kind: 'http', name: 'evals', weight: 1 },
        { kind: 'checks', jsonSchema: { type: 'object', required: ['answer'] }, maxLength: 2000, weight: 1 },
      ],
      budgetUsd: 2.5,
      sample: { stable: 0.1, candidate: 1 },
      noEvidenceAfter: 20 * 60_000,
      concurrency: 16,
    });
  });
});

describe('operating a running rollout', () => {
  it(
    'pause, resume, promote and rollback (which returns after the routing changed)',
    { timeout: 240_000 },
    async () => {
      const route = newRoute('ops');
      await createRoute(route);
      expect((await startQuiet(route)).code).toBe(0);
      await until(
        () => getRoute(db.pool, route),
        (s) => s?.canaryBps === 500,
      );

      const paused = await cli([
        'pause',
        route,
        '--reason',
        'looking into a complaint',
        '--actor',
        'cli:carol',
      ]);
      expect(paused.code, paused.stderr).toBe(0);
      expect(paused.stdout).toContain(`rollout-${route}: paused: phase canary, canary share 5%`);
      expect(await status(route)).toMatchObject({ paused: true, phase: 'canary', shareBps: 500 });
      const again = await cli(['pause', `rollout-${route}`]); // a workflow id works as well as a route
      expect(again.stdout).toContain('already paused; nothing changed');

      const resumed = await cli(['resume', route]);
      expect(resumed.stdout).toContain(`rollout-${route}: resumed`);
      expect((await status(route)).paused).toBe(false);

      const promoted = await cli(['promote', route, '--json']);
      const p = json<{ applied: boolean; before: RolloutStatus; after: RolloutStatus }>(promoted);
      expect(p).toMatchObject({
        applied: true,
        before: { shareBps: 500 },
        after: { shareBps: 1000, phase: 'canary' },
      });
      expect(p.after.steps.at(-1)).toMatchObject({ fromBps: 500, toBps: 1000, by: 'cli:tester' });
      expect(await getRoute(db.pool, route)).toMatchObject({ canaryBps: 1000, owner: `rollout-${route}` });
      const promotedText = await cli(['promote', route]);
      expect(promotedText.stdout).toContain('promoted: phase canary, canary share 10% -> 20%');

      const rolledBack = await cli([
        'rollback',
        route,
        '--reason',
        'answers got worse',
        '--actor',
        'cli:dave',
      ]);
      expect(rolledBack.code, rolledBack.stderr).toBe(0);
      expect(rolledBack.stdout).toContain(`rollout-${route}: rolled_back: answers got worse (by cli:dave)`);
      expect(rolledBack.stdout).toContain(
        `stable:       anthropic:claude-sonnet-4 serves all traffic on ${route}`,
      );
      expect(rolledBack.stdout).toContain('canary share: 20% -> 0%');
      // The update returned after the routing changed: no waiting needed here.
      expect(await getRoute(db.pool, route)).toMatchObject({
        canaryBps: 0,
        shadowRate: 0,
        owner: null,
        stableSlot: 'blue',
      });

      const [after, closedSignal, noReason, shown] = await Promise.all([
        status(route),
        cli(['pause', route]),
        cli(['rollback', route]),
        cli(['routes', 'show', route, '--json']),
      ]);
      expect(after).toMatchObject({
        phase: 'rolled_back',
        shareBps: 0,
        outcome: { result: 'rolled_back', stable: 'anthropic:claude-sonnet-4' },
      });
      expect(closedSignal.code).toBe(1);
      expect(closedSignal.stderr).toContain(`cannot pause rollout-${route}: it is not running`);
      expect(noReason.code).toBe(2);
      expect(noReason.stderr).toContain("required option '--reason <text>' not specified");
      const audit = json<{ changes: Array<{ reason: string }> }>(shown).changes.map((c) => c.reason);
      expect(audit[0]).toBe('answers got worse (by cli:dave)');
      expect(audit).toContain('canary share 5% -> 10% (by cli:tester)');
    },
  );

  it(
    'approval: promote --to-full waits for approve; status --watch follows it to the end; alerts go to --alert channels',
    { timeout: 240_000 },
    async () => {
      const alerts: Array<{ event: { kind: string } }> = [];
      const hook = http.createServer((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          alerts.push(JSON.parse(body));
          res.end('ok');
        });
      });
      const hookPort = await freePort();
      await new Promise<void>((r) => hook.listen(hookPort, '127.0.0.1', r));
      try {
        const route = newRoute('appr');
        await createRoute(route);
        const hookUrl = `http://127.0.0.1:${hookPort}/hook`;
        // A URL is refused (it would land in the workflow history), naming the field and the flag.
        const refusedUrl = await startQuiet(route, '--webhook', hookUrl);
        expect(refusedUrl.code).not.toBe(0);
        expect(refusedUrl.stderr).toContain('alerts.webhookUrl: a webhook URL is a secret');
        expect(refusedUrl.stderr).toContain('(--webhook)');
        const urlAsChannel = await startQuiet(route, '--alert', hookUrl);
        expect(urlAsChannel.stderr).toContain('not a URL');
        alertChannels.set('ops-hook', { type: 'slack', url: hookUrl });
        expect((await startQuiet(route, '--require-approval', '--alert', 'ops-hook')).code).toBe(0);
        await until(
          () => getRoute(db.pool, route),
          (s) => s?.canaryBps === 500,
        );
        const watch = cliBackground(['status', route, '--watch', '--interval', '0.5']);
        await watch.until(/phase\s+canary/);

        const toFull = await cli(['promote', route, '--to-full']);
        expect(toFull.stdout).toContain('promoted: phase canary -> awaiting-approval');
        const [waiting, refused] = await Promise.all([status(route), cli(['promote', route])]);
        expect(waiting).toMatchObject({ phase: 'awaiting-approval', awaitingApproval: true });
        expect(refused.code).toBe(1);
        expect(refused.stderr).toContain(
          `it waits for approval; approve it with 'model-rollout approve ${route}'`,
        );

        const approved = await cli(['approve', route, '--actor', 'cli:erin']);
        expect(approved.code, approved.stderr).toBe(0);
        expect(approved.stdout).toContain(
          'approved: phase awaiting-approval -> baking, canary share 5% -> 100%, stable anthropic:claude-sonnet-4 -> openai:gpt-4o',
        );
        expect(await getRoute(db.pool, route)).toMatchObject({
          stableSlot: 'green',
          canaryBps: 0,
          owner: `rollout-${route}`,
        });

        const rolledBack = await cli(['rollback', route, '--reason', 'more errors during the bake']);
        expect(rolledBack.stdout).toContain('canary share: 100% -> 0%');
        expect(await getRoute(db.pool, route)).toMatchObject({
          stableSlot: 'blue',
          canaryBps: 0,
          owner: null,
        });

        // The watch ends by itself with the rollout, having drawn each phase it saw.
        const watched = await Promise.race([
          watch.exited,
          new Promise<Result>((_, reject) =>
            setTimeout(() => reject(new Error('watch did not end')), 30_000),
          ),
        ]);
        expect(watched.code, watched.stderr).toBe(0);
        expect(watched.stdout).toMatch(/canary share\s+\[#+\.+\] 5%/);
        expect(watched.stdout).toContain('(awaiting approval: model-rollout approve');
        expect(watched.stdout).toMatch(/phase\s+baking/);
        expect(watched.stdout).toContain('outcome  rolled_back: more errors during the bake');
        expect(watched.stdout).not.toContain('\x1b['); // no ANSI when not on a terminal

        const kinds = (
          await until(
            async () => alerts.map((a) => a.event.kind),
            (k) => k.includes('rollback'),
          )
        ).sort();
        expect(kinds).toEqual(expect.arrayContaining(['approval-needed', 'promotion', 'rollback']));
      } finally {
        hook.close();
      }
    },
  );
});

describe('list and errors', () => {
  it('list --json finds rollouts by route and phase through visibility', { timeout: 120_000 }, async () => {
    const route = newRoute('list');
    await createRoute(route);
    expect((await startQuiet(route)).code).toBe(0);
    await until(
      () => getRoute(db.pool, route),
      (s) => s?.canaryBps === 500,
    );
    type Listed = Array<{
      workflowId: string;
      route: string;
      phase: string;
      candidate: string;
      shareBps: number;
      status: string;
    }>;
    // Visibility is eventually consistent.
    const listed = await until(
      async () => json<Listed>(await cli(['list', '--route', route, '--json'])),
      (l) => l[0]?.phase === 'canary',
    );
    expect(listed).toEqual([
      expect.objectContaining({
        workflowId: `rollout-${route}`,
        route,
        phase: 'canary',
        candidate: 'openai:gpt-4o',
        shareBps: 500,
        status: 'RUNNING',
      }),
    ]);
    const [byPhase, text, badPhase] = await Promise.all([
      cli(['list', '--phase', 'canary', '--status', 'running', '--limit', '100', '--json']),
      cli(['list', '--route', route]),
      cli(['list', '--phase', 'sideways']),
    ]);
    expect(json<Listed>(byPhase).map((r) => r.route)).toContain(route);
    expect(text.stdout).toMatch(new RegExp(`${route}\\s+canary\\s+openai:gpt-4o\\s+5%\\s+running`));
    expect(badPhase.code).toBe(2);
  });

  it(
    'names the address when no Temporal server answers, and says what it tried for an unknown rollout',
    { timeout: 120_000 },
    async () => {
      const port = await freePort();
      const [noServer, noServerStart, unknown] = await Promise.all([
        cli(['list'], { env: { TEMPORAL_ADDRESS: `127.0.0.1:${port}` } }),
        cli(['status', 'support-bot'], { env: { TEMPORAL_ADDRESS: `127.0.0.1:${port}` } }),
        cli(['status', 'no-such-route']),
      ]);
      expect(noServer.code).toBe(1);
      expect(noServer.stderr).toContain(`no Temporal server reachable at 127.0.0.1:${port}`);
      expect(noServerStart.code).toBe(1);
      expect(noServerStart.stderr).toContain(`127.0.0.1:${port}`);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain(
        'no rollout found for "no-such-route" (no workflow rollout-no-such-route or no-such-route',
      );
    },
  );

  it('has --help on every command, and usage mistakes exit 2', { timeout: 120_000 }, async () => {
    // In process for all of them (each spawn costs seconds), spawned for one.
    const program = buildProgram();
    const ours = [
      'worker',
      'simulator',
      'routes',
      'start',
      'status',
      'list',
      'pause',
      'resume',
      'promote',
      'rollback',
      'approve',
    ];
    for (const name of ours) {
      const cmd = program.commands.find((c) => c.name() === name)!;
      expect(cmd, name).toBeTruthy();
      expect(cmd.description().length, name).toBeGreaterThan(10);
      expect(cmd.helpInformation()).toContain(`Usage: model-rollout ${name}`);
    }
    const routes = program.commands.find((c) => c.name() === 'routes')!;
    expect(routes.commands.map((c) => c.name())).toEqual(['list', 'show', 'set', 'release']);
    const [help, usage] = await Promise.all([
      cli(['rollback', '--help']),
      cli(['start', 'x', '--strategy', 'sideways']),
    ]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: model-rollout rollback [options] <id-or-route>');
    expect(help.stdout).toContain('--reason <text>');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("argument 'sideways' is invalid");
  });
});

describe('long-running commands', () => {
  it('worker: runs rollouts on its task queue until Ctrl-C', { timeout: 180_000 }, async () => {
    const taskQueue = `${env.taskQueue}-own`;
    const w = cliBackground(['worker'], { env: { TEMPORAL_TASK_QUEUE: taskQueue } });
    await w.until(/Press Ctrl-C to stop/, 150_000);
    expect(w.result.stdout).toContain(`worker running on task queue "${taskQueue}"`);
    expect(w.result.stdout).toContain(`Temporal:  ${env.address}`);
    // It really serves: a probe workflow on its queue completes.
    const result = await client.workflow.execute('routeProbeWorkflow', {
      taskQueue,
      workflowId: newRoute('probe'),
      args: ['nothing-here'],
    });
    expect(result).toEqual({ route: 'nothing-here', exists: false, version: null });
    const stopped = await w.stop();
    expect(stopped.code, stopped.stderr).toBe(0);
  });

  it(
    'simulator: prints its base URLs, serves until Ctrl-C; a bad scenario is a usage error',
    { timeout: 120_000 },
    async () => {
      const badScenario = writeJson('scenario.json', { models: { 'gpt-4o': { accuracy: 7 } } });
      const s = cliBackground(['simulator', '--port', '0']);
      const [bad] = await Promise.all([
        cli(['simulator', '--scenario', badScenario]),
        s.until(/Press Ctrl-C to stop/),
      ]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('invalid scenario');
      const base = /OpenAI base URL:\s+(\S+)/.exec(s.result.stdout)![1];
      const res = await fetch(`${base}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer sk-sim' },
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'What is 2 + 2?' }] }),
      });
      expect(res.status).toBe(200);
      const stopped = await s.stop();
      expect(stopped.code).toBe(0);
      expect(stopped.stdout).toContain('served 1 request(s)');
    },
  );
});

describe('examples', () => {
  it('ships valid example specs and route configs', () => {
    const dir = path.join(ROOT, 'examples');
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const f of files) {
      const value = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
      if (f.startsWith('route')) expect(() => parseRouteConfig(value, f), f).not.toThrow();
      // An eval step's dataset file is read into the spec by `start --spec`, as here.
      else
        expect(
          () => parseRolloutSpec(inlineEvalDatasets(value, dir, (file) => fs.readFileSync(file, 'utf8'))),
          f,
        ).not.toThrow();
    }
  });
});

describe('status rendering', () => {
  it('shows the last decision with the stable and canary numbers side by side', () => {
    const stats = {
      'stable.mean': 4.21,
      'canary.mean': 4.05,
      'errors.stableRate': 0.01,
      'errors.canaryRate': 0.0125,
      'step.canary.scored': 12,
      'quality.diff': -0.16,
    };
    expect(pairStats(stats)).toEqual([
      { metric: 'mean', stable: 4.21, canary: 4.05 },
      { metric: 'errors rate', stable: 0.01, canary: 0.0125 },
    ]);
    expect(share(1250)).toBe('12.5%');
    expect(progressBar(2000, 10)).toBe('[##........] 20%');
    const at = new Date(Date.UTC(2025, 0, 31, 12, 0, 0)).toISOString();
    const view: StatusView = {
      workflowId: 'rollout-support-bot',
      runId: 'r1',
      execution: 'RUNNING',
      startTime: at,
      closeTime: null,
      source: 'query',
      uiUrl: `${UI}/namespaces/default/workflows/rollout-support-bot`,
      status: {
        route: 'support-bot',
        workflowId: 'rollout-support-bot',
        strategy: 'canary',
        phase: 'canary',
        shareBps: 2000,
        paused: true,
        awaitingApproval: false,
        stable: 'anthropic:claude-sonnet-4',
        candidate: 'openai:gpt-4o',
        routingVersion: 7,
        startedAt: at,
        plan: [
          { kind: 'setShare', description: 'canary share 10%', share: 1000 },
          { kind: 'setShare', description: 'canary share 20%', share: 2000 },
          { kind: 'approve', description: 'approval (within 1h, else rollback)' },
          { kind: 'setShare', description: 'promote to 100%', share: 10000 },
          { kind: 'bake', description: 'bake 30m' },
        ],
        step: { index: 1, kind: 'setShare', description: 'canary share 20%', share: 2000, startedAt: at },
        decisions: [
          {
            at,
            phase: 'canary',
            shareBps: 2000,
            action: 'hold',
            policy: 'sequential',
            reasons: ['need 50 scored canary answers at this step (have 12)'],
            stats,
          },
        ],
        triggers: [],
        steps: [{ at, fromBps: 1000, toBps: 2000, by: 'policy' }],
      },
    };
    const text = renderStatus(view, Date.parse(at) + 90_000);
    expect(text).toMatch(/phase\s+canary \(paused\)/);
    expect(text).toMatch(/canary share\s+\[#{6}\.{24}\] 20%/);
    expect(text).toMatch(/started\s+.* \(2m ago\)/);
    // The step list, the current step marked.
    expect(text).toMatch(
      /steps\s+2\/5 canary share 20%: 10% -> \[20%\] -> approval \(within 1h, else rollback\) -> 100% -> bake 30m/,
    );
    expect(text).toMatch(/10% -> 20%\s+by policy/);
    expect(text).toMatch(/canary\s+20%\s+hold\s+sequential\s+need 50 scored canary answers/);
    expect(text).toMatch(
      /metric\s+stable\s+canary\n\s+mean\s+4\.21\s+4\.05\n\s+errors rate\s+0\.01\s+0\.013/,
    );
    expect(text).not.toMatch(/quality evidence/); // no scoring status yet

    view.status.scoring = {
      scored: { stable: 40, candidate: 12 },
      failed: { stable: 3, candidate: 9 },
      failures: { 'judge: timeout': 10, 'judge: judge reply had no 1-5 score': 2 },
      costUsd: 0.0123,
      budgetUsd: 5,
      budgetExhausted: false,
      lastCandidateScoreAt: at,
      noQualityEvidence: true,
    };
    const withEvidence = renderStatus(view, Date.parse(at) + 90_000);
    expect(withEvidence).toMatch(/no quality evidence/);
    expect(withEvidence).toMatch(/judged\s+candidate 12, stable 40/);
    expect(withEvidence).toMatch(
      /failed\s+candidate 9, stable 3: judge: timeout x10, judge: judge reply had no 1-5 score x2/,
    );
    expect(withEvidence).toMatch(/cost\s+\$0\.0123 of \$5/);
  });
});
