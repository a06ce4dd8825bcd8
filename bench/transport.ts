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
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import {
  createLeanOpenAICompatibleAdapter,
  createOpenAICompatibleAdapter,
  simulatorRegistry,
  type ChatMessage,
  type ProviderAdapter,
  type Target,
} from '../src/data-plane/providers';
import { canPin, median, runCalls, spawnSimulator } from './lib';

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

/** ~1 KB request body: a system prompt plus a short question. */
const messages: ChatMessage[] = [
  { role: 'system', content: 'You are a concise support assistant for an online store. '.repeat(16).trim() },
  { role: 'user', content: 'What is the capital of France?' },
];
const target: Target = { provider: 'openai', model: 'gpt-4o' };

async function main(): Promise<void> {
  const pinned = canPin();
  if (pinned) execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  const { child, url } = await spawnSimulator(
    pinned,
    { seed: 1, default: { latencyMs: { median: 0 }, outputTokens: 60 } },
    'transport-bench-',
  );
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
  let failures = 0;
  const { cpuUsPerCall, seconds } = await runCalls(
    () => adapter.complete(target, messages),
    calls,
    CONCURRENCY,
    () => {
      failures++;
    },
  );
  if (failures) console.warn(`  (${failures} of ${calls} calls failed)`);
  return { cpu: cpuUsPerCall, wall: calls / seconds };
}

await main();
