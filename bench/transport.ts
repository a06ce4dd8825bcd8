/**
 * Client CPU per call: the `openai` SDK path vs the lean undici transport, both through our
 * `ProviderAdapter` (so including request building, normalization and cost).
 *
 *   npx tsx bench/transport.ts [--calls 8000] [--rounds 3] [--concurrency 16]
 *
 * Same setup as DESIGN.md "Performance notes": a fast local OpenAI-compatible upstream (the simulator,
 * zero latency, in a child process pinned to core 1), this process pinned to core 0, 16 concurrent
 * calls, ~1 KB request. CPU is `process.cpuUsage()` of this process only, so the upstream's work is
 * not counted. Rounds alternate SDK / lean so drift hits both; the median round is reported.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import {
  createLeanOpenAICompatibleAdapter,
  createOpenAICompatibleAdapter,
  simulatorRegistry,
  type ChatMessage,
  type ProviderAdapter,
  type Target,
} from '../src/providers';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '8000' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '16' },
  },
});
const CALLS = Number(values.calls);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = Number(values.concurrency);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

// A full GC before each measured round, so one side's garbage is not collected on the other's clock.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** ~1 KB request body: a system prompt plus a short question. */
const messages: ChatMessage[] = [
  { role: 'system', content: 'You are a concise support assistant for an online store. '.repeat(16).trim() },
  { role: 'user', content: 'What is the capital of France?' },
];
const target: Target = { provider: 'openai', model: 'gpt-4o' };

async function main(): Promise<void> {
  const pinned = hasTaskset();
  if (pinned) execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  const { child, url } = await startSimulator(pinned);
  const registry = simulatorRegistry(url);
  const sdk = createOpenAICompatibleAdapter({ registry });
  const lean = createLeanOpenAICompatibleAdapter({ registry, connections: CONCURRENCY });
  const requestBytes = Buffer.byteLength(JSON.stringify({ model: target.model, messages }));
  try {
    console.log(
      `upstream: simulator pid ${child.pid}${pinned ? ' on core 1, client on core 0' : ' (not pinned: taskset missing)'}; ` +
        `${CONCURRENCY} concurrent, request ${requestBytes} bytes, ${CALLS} calls x ${ROUNDS} rounds per transport`,
    );
    const adapters: [string, ProviderAdapter][] = [
      ['openai SDK', sdk],
      ['lean (undici)', lean],
    ];
    for (const [, adapter] of adapters) await run(adapter, Math.min(2000, CALLS)); // warm-up (JIT, sockets)
    const samples = new Map<string, { cpu: number; wall: number }[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, adapter] of round % 2 === 0 ? adapters : [...adapters].reverse()) {
        const sample = await run(adapter, CALLS);
        samples.set(name, [...(samples.get(name) ?? []), sample]);
      }
    }
    console.log('transport        CPU µs/call (median)   min..max      calls/s on one core   wall calls/s');
    for (const [name] of adapters) {
      const runs = samples.get(name)!;
      const cpu = median(runs.map((r) => r.cpu));
      const wall = median(runs.map((r) => r.wall));
      console.log(
        [
          name.padEnd(16),
          cpu.toFixed(0).padStart(20),
          `${Math.min(...runs.map((r) => r.cpu)).toFixed(0)}..${Math.max(...runs.map((r) => r.cpu)).toFixed(0)}`.padStart(
            13,
          ),
          (1e6 / cpu).toFixed(0).padStart(21),
          wall.toFixed(0).padStart(14),
        ].join(' '),
      );
    }
    const ratio =
      median(samples.get('openai SDK')!.map((r) => r.cpu)) /
      median(samples.get('lean (undici)')!.map((r) => r.cpu));
    console.log(`lean uses ${ratio.toFixed(1)}x less CPU per call than the SDK path`);
  } finally {
    await lean.close();
    child.kill('SIGTERM');
  }
}

/** `calls` calls at CONCURRENCY in flight; returns client CPU µs per call and wall calls/s. */
async function run(adapter: ProviderAdapter, calls: number): Promise<{ cpu: number; wall: number }> {
  let issued = 0;
  let failures = 0;
  const worker = async () => {
    while (issued < calls) {
      issued++;
      try {
        await adapter.complete(target, messages);
      } catch {
        failures++;
      }
    }
  };
  gc();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (failures) console.warn(`  (${failures} of ${calls} calls failed)`);
  return { cpu: (cpu.user + cpu.system) / calls, wall: calls / seconds };
}

function startSimulator(pinned: boolean): Promise<{ child: ChildProcess; url: string }> {
  const scenarioFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'transport-bench-')), 'scenario.json');
  fs.writeFileSync(
    scenarioFile,
    JSON.stringify({ seed: 1, default: { latencyMs: { median: 0 }, outputTokens: 60 } }),
  );
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
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('http://')) resolve({ child, url: line.trim() });
    });
  });
}

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return os.cpus().length > 1;
  } catch {
    return false;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

await main();
