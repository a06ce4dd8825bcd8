/**
 * Helpers shared by several benchmarks. A helper that only one bench uses stays in that bench.
 * Importing this module has no side effects: nothing is spawned or flagged until a helper is called.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

// ------------------------------------------------------------------------------------------------ statistics

/**
 * The value at index floor(p/100 · n) of the sorted values (p from 0 to 100), NaN when there are none.
 * No interpolation: the benches have always reported this rank, so old and new figures compare.
 */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Median of a few rounds (mean of the middle two for an even count): one disturbed round moves it little. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// ------------------------------------------------------------------------------------------------ CPU

let gc: (() => void) | undefined;

/** A full GC before each measured round, so one side's garbage is not collected on the other's clock. */
function fullGc(): void {
  if (!gc) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  gc();
}

/**
 * `calls` calls with `concurrency` in flight, after a full GC; returns this process's CPU µs per call and the
 * wall time. A rejected call stops the round unless `onError` takes it.
 */
export async function runCalls(
  call: () => Promise<unknown>,
  calls: number,
  concurrency: number,
  onError?: (err: unknown) => void,
): Promise<{ cpuUsPerCall: number; seconds: number }> {
  let issued = 0;
  const worker = async () => {
    while (issued < calls) {
      issued++;
      try {
        await call();
      } catch (err) {
        if (!onError) throw err;
        onError(err);
      }
    }
  };
  fullGc();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { cpuUsPerCall: (cpu.user + cpu.system) / calls, seconds };
}

let clockTicks: number | undefined;

/**
 * CPU seconds (user + system) of another process so far, from /proc (throws where it is missing).
 * `process.cpuUsage()` only sees this process; a server under test runs in a child.
 */
export function cpuSeconds(pid: number): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

// ------------------------------------------------------------------------------------------------ processes

/**
 * Whether the client and the server under test can be pinned to cores 0 and 1: on a shared machine,
 * unpinned processes compete for the same core and the numbers measure the scheduler.
 */
export function canPin(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return os.cpus().length > 1;
  } catch {
    return false;
  }
}

/**
 * The simulator in a child process (on core 1 when `pinned`), so that its work is not counted in this
 * process's CPU time; `scenario` is written to a fresh temporary file named after `tmpPrefix`.
 */
export function spawnSimulator(
  pinned: boolean,
  scenario: object,
  tmpPrefix: string,
): Promise<{ child: ChildProcess; url: string }> {
  const scenarioFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), tmpPrefix)), 'scenario.json');
  fs.writeFileSync(scenarioFile, JSON.stringify(scenario));
  const node = [
    process.execPath,
    '--import',
    'tsx',
    'src/tooling/simulator/main.ts',
    '--port',
    '0',
    '--scenario',
    scenarioFile,
  ];
  const [command, ...args] = pinned ? ['taskset', '-c', '1', ...node] : node;
  const child = spawn(command, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`simulator exited with code ${code} before it was ready`)));
    // The entry script prints its URL alone on a line once it accepts requests.
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('http://')) resolve({ child, url: line.trim() });
    });
  });
}

/** A port that is free now, for a child process that must be told its port before it starts. */
export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

// ------------------------------------------------------------------------------------------------ Postgres

/** DATABASE_URL, or exit with a hint: a bench names the server it measures. */
export function databaseUrlOrExit(): string {
  const baseUrl = process.env.DATABASE_URL;
  if (!baseUrl) {
    console.error(
      'set DATABASE_URL to the server to measure; for the embedded one, `model-rollout db start` starts it and prints ' +
        'its URL without the password, which is in .data/postgres/password: ' +
        'DATABASE_URL=postgres://postgres:$(cat .data/postgres/password)@127.0.0.1:54329/postgres',
    );
    process.exit(2);
  }
  return baseUrl;
}

/**
 * A new database next to `baseUrl`'s (named `<prefix>_<random>`), so a bench starts from an empty schema and
 * never touches data it did not make. `drop()` removes it even with connections still open.
 */
export async function scratchDatabase(
  baseUrl: string,
  prefix: string,
): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${crypto.randomBytes(4).toString('hex')}`;
  // Loaded here, not at the top: processes that import this module only for its helpers (a gateway under
  // measurement) should not carry pg's memory.
  const { default: pg } = await import('pg');
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      await admin.end();
    },
  };
}
