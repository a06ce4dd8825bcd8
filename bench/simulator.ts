/**
 * Simulator throughput: how many requests per second one core of simulator answers.
 *
 *   npx tsx bench/simulator.ts [--seconds 5] [--concurrency 32]
 *
 * The simulator runs in a child process pinned to core 1 (`taskset -c 1`) with zero latency; this
 * process pins itself to core 0 and drives it with undici at a fixed concurrency, for the OpenAI and
 * Anthropic wire formats, JSON and streaming. Server CPU time per request comes from /proc.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { loadQuestions } from '../src/decision/scoring/reference-set/questions';
import { canPin, cpuSeconds, percentile, spawnSimulator } from './lib';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '32' } },
});
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
const WARMUP_MS = 1000;

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
  const pinned = canPin();
  if (pinned) execFileSync('taskset', ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  const { child, url } = await spawnSimulator(
    pinned,
    { seed: 1, default: { latencyMs: { median: 0 } } },
    'sim-bench-',
  );
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
      // 0, not NaN, when every request failed (the failures are shown at the end of the row).
      const ms = (p: number) => (result.latencies.length ? percentile(result.latencies, p) : 0);
      console.log(
        [
          mode.name.padEnd(17),
          String(result.latencies.length).padStart(9),
          perSecond.toFixed(0).padStart(7),
          ms(50).toFixed(2).padStart(8),
          ms(99).toFixed(2).padStart(8),
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

/** Server CPU µs so far; 0 where /proc is missing (not Linux), so that the rest of the table still prints. */
function cpuMicros(pid: number): number {
  try {
    return cpuSeconds(pid) * 1e6;
  } catch {
    return 0;
  }
}

await main();
