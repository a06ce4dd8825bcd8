/**
 * Simulator throughput: how many requests per second one core of simulator answers.
 *
 *   npx tsx bench/simulator.ts [--seconds 5] [--concurrency 32]
 *
 * The simulator runs in a child process pinned to core 1 (`taskset -c 1`) with zero latency; this
 * process pins itself to core 0 and drives it with undici at a fixed concurrency, for the OpenAI and
 * Anthropic wire formats, JSON and streaming. Server CPU time per request comes from /proc.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { loadQuestions } from '../src/simulator/questions';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '32' } },
});
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
const WARMUP_MS = 1000;
const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Mode {
  name: string;
  path: string;
  headers: Record<string, string>;
  body: (prompt: string) => string;
}

const prompts = loadQuestions().map((q) => q.prompt);
const messages = (prompt: string) => [{ role: 'user', content: prompt }];
const MODES: Mode[] = [
  {
    name: 'openai json',
    path: '/v1/chat/completions',
    headers: { authorization: 'Bearer bench', 'content-type': 'application/json' },
    body: (prompt) => JSON.stringify({ model: 'gpt-4o', messages: messages(prompt) }),
  },
  {
    name: 'openai stream',
    path: '/v1/chat/completions',
    headers: { authorization: 'Bearer bench', 'content-type': 'application/json' },
    body: (prompt) =>
      JSON.stringify({
        model: 'gpt-4o',
        messages: messages(prompt),
        stream: true,
        stream_options: { include_usage: true },
      }),
  },
  {
    name: 'anthropic json',
    path: '/v1/messages',
    headers: { 'x-api-key': 'bench', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: (prompt) =>
      JSON.stringify({ model: 'claude-sonnet-4', max_tokens: 1024, messages: messages(prompt) }),
  },
  {
    name: 'anthropic stream',
    path: '/v1/messages',
    headers: { 'x-api-key': 'bench', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: (prompt) =>
      JSON.stringify({
        model: 'claude-sonnet-4',
        max_tokens: 1024,
        messages: messages(prompt),
        stream: true,
      }),
  },
];

async function main(): Promise<void> {
  const pinned = hasTaskset();
  if (pinned) execFileSync('taskset', ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  const scenarioFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sim-bench-')), 'scenario.json');
  fs.writeFileSync(scenarioFile, JSON.stringify({ seed: 1, default: { latencyMs: { median: 0 } } }));

  const { child, url } = await startChild(pinned, scenarioFile);
  const pool = new Pool(url, { connections: CONCURRENCY, pipelining: 1 });
  try {
    console.log(
      `simulator pid ${child.pid}${pinned ? ' on core 1, client on core 0' : ' (taskset missing: not pinned)'}; ` +
        `concurrency ${CONCURRENCY}, ${SECONDS} s per mode, latency 0, load average ${os.loadavg()[0].toFixed(2)}`,
    );
    // The last column is what one fully busy core would serve: the figure that holds on a loaded machine.
    console.log(
      'mode               requests   req/s   p50 ms   p99 ms   server CPU   server µs/req   req/s per core',
    );
    for (const mode of MODES) {
      await drive(pool, mode, WARMUP_MS);
      const cpuBefore = cpuMicros(child.pid!);
      const result = await drive(pool, mode, SECONDS * 1000);
      const cpu = cpuMicros(child.pid!) - cpuBefore;
      const perSecond = result.latencies.length / result.seconds;
      console.log(
        [
          mode.name.padEnd(17),
          String(result.latencies.length).padStart(9),
          perSecond.toFixed(0).padStart(7),
          percentile(result.latencies, 0.5).toFixed(2).padStart(8),
          percentile(result.latencies, 0.99).toFixed(2).padStart(8),
          `${((cpu / 1e6 / result.seconds) * 100).toFixed(0)}%`.padStart(12),
          (cpu / result.latencies.length).toFixed(0).padStart(15),
          (cpu > 0 ? (result.latencies.length / cpu) * 1e6 : 0).toFixed(0).padStart(16),
          result.failures ? `  (${result.failures} failed)` : '',
        ].join(' '),
      );
    }
  } finally {
    await pool.close();
    child.kill('SIGTERM');
  }
}

/** Keeps CONCURRENCY requests in flight for `ms`; every response body is read to its end. */
async function drive(pool: Pool, mode: Mode, ms: number) {
  const bodies = prompts.map(mode.body);
  const latencies: number[] = [];
  let failures = 0;
  let next = 0;
  const started = performance.now();
  const deadline = started + ms;
  const worker = async () => {
    while (performance.now() < deadline) {
      const body = bodies[next++ % bodies.length];
      const t0 = performance.now();
      const response = await pool.request({ path: mode.path, method: 'POST', headers: mode.headers, body });
      await response.body.text();
      if (response.statusCode === 200) latencies.push(performance.now() - t0);
      else failures++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { latencies, failures, seconds: (performance.now() - started) / 1000 };
}

function startChild(pinned: boolean, scenarioFile: string): Promise<{ child: ChildProcess; url: string }> {
  const node = [
    process.execPath,
    '--import',
    'tsx',
    'src/simulator/main.ts',
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

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** User + system CPU time of a process, from /proc (0 where /proc is missing); Linux ticks are 1/100 s. */
function cpuMicros(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks / 100) * 1e6;
  } catch {
    return 0;
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

await main();
