import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XMLParser } from 'fast-xml-parser';
import { startSimulator, type SimulatorHandle } from '../src/tooling/simulator';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'model-rollout.js');
const DATASET = path.join(ROOT, 'examples', 'eval-support-bot.jsonl');

/**
 * `model-rollout eval` as a CI job runs it: the CLI binary, the shipped example dataset, the simulator's
 * models behind the real OpenAI and Anthropic SDKs, answering in hundreds of milliseconds.
 */
describe('model-rollout eval', () => {
  let sim: SimulatorHandle;
  let dir: string;

  beforeAll(async () => {
    sim = await startSimulator({
      scenario: {
        seed: 7,
        default: { latencyMs: { median: 300, p99: 900 }, accuracy: 1 },
        // A third of the answers wrong: what a worse model does to the team's questions.
        models: { 'gpt-4o-mini': { accuracy: 0.65 } },
      },
    });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'eval-'));
  });
  afterAll(async () => {
    await sim?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const cli = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await run(process.execPath, [BIN, 'eval', '--simulator', sim.url, ...args], {
        env: { ...process.env, NO_COLOR: '1' },
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  const junit = (file: string) =>
    new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(fs.readFileSync(file, 'utf8'));

  it('fails a worse candidate: exit 1, a table naming what failed, and a JUnit file whose counts match it', async () => {
    const out = path.join(dir, 'worse.xml');
    const r = await cli(
      '--dataset',
      DATASET,
      '--candidate',
      'openai:gpt-4o-mini',
      '--stable',
      'anthropic:claude-sonnet-4',
      '--junit',
      out,
    );
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(
      'eval gate failed: openai:gpt-4o-mini may be worse than anthropic:claude-sonnet-4 by more than 5%',
    );
    expect(r.stderr).toMatch(/^eval: 120\/120 answers checked/m);
    const rows = r.stdout.split('\n').filter((l) => /^(arithmetic|conversion|fact|json)-\d{3} /.test(l));
    expect(rows).toHaveLength(60);
    const candidateFails = rows.filter((l) => /^\S+\s+FAIL/.test(l)).length;
    const stableFails = rows.filter((l) => /^\S+\s+\S+\s+FAIL/.test(l)).length;
    expect(candidateFails).toBeGreaterThan(8);
    expect(stableFails).toBe(0);
    const summary = r.stdout.split('\n').find((l) => l.startsWith('FAIL  candidate passed'))!;
    expect(summary).toContain(`candidate passed ${60 - candidateFails}/60`);
    expect(summary).toContain('stable 60/60 (100.0%)');

    const doc = junit(out);
    const [candidate, stable, gate] = doc.testsuites.testsuite;
    expect(Number(candidate.failures)).toBe(candidateFails);
    expect(Number(stable.failures)).toBe(0);
    expect(Number(candidate.tests)).toBe(60);
    expect(gate.testcase.failure.message).toBe(summary.replace(/^FAIL {2}/, ''));
    expect(Number(doc.testsuites.failures)).toBe(candidateFails + 1);
  }, 120_000);

  it('passes an equal candidate (exit 0) and says so', async () => {
    const out = path.join(dir, 'equal.xml');
    const r = await cli(
      '--dataset',
      DATASET,
      '--candidate',
      'openai:gpt-4o',
      '--stable',
      'anthropic:claude-sonnet-4',
      '--junit',
      out,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^PASS {2}candidate passed 60\/60 \(100\.0%\), stable 60\/60 \(100\.0%\); 0 gained, 0 lost;/m,
    );
    expect(Number(junit(out).testsuites.failures)).toBe(0);
  }, 120_000);

  it('refuses a bad dataset or flag before any call, naming the line or flag (exit 2)', async () => {
    const bad = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(bad, `${JSON.stringify({ prompt: 'hi' })}\n{oops\n`);
    const before = (await fetch(`${sim.url}/admin/stats`).then((x) => x.json())) as unknown;
    const r = await cli(
      '--dataset',
      bad,
      '--candidate',
      'openai:gpt-4o',
      '--stable',
      'anthropic:claude-sonnet-4',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `error: ${bad}: line 1: give a reference or an assert list (what passes); line 2: not JSON`,
    );
    const after = (await fetch(`${sim.url}/admin/stats`).then((x) => x.json())) as unknown;
    expect(after).toEqual(before);
    const flag = await cli(
      '--dataset',
      DATASET,
      '--candidate',
      'gpt-4o',
      '--stable',
      'anthropic:claude-sonnet-4',
    );
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/--candidate.*provider:model/);
    const missing = await cli(
      '--dataset',
      path.join(dir, 'none.jsonl'),
      '--candidate',
      'openai:gpt-4o',
      '--stable',
      'anthropic:claude-sonnet-4',
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--dataset: cannot read');
  }, 60_000);
});
