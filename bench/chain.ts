/**
 * The fallback chain's own CPU overhead per call.
 *
 *   npx tsx bench/chain.ts [--calls 8000] [--rounds 6] [--concurrency 16]
 *
 * 1. Over HTTP: the lean adapter called directly vs the same adapter through `createFallbackChain`
 *    (breaker + default quality check on), against the simulator at zero latency in a child process
 *    (pinned to core 1; this process to core 0). Rounds alternate direct / chain, and CPU is this
 *    process's `process.cpuUsage()`; the overhead is the median of the per-round differences. The
 *    per-call cost of the HTTP round trip is ~100 µs with noise of a few µs, so this figure is an
 *    upper bound with that resolution.
 * 2. In-process (precise): the same comparison with an adapter that returns a ready result without I/O,
 *    over many more calls, for the happy path (depth 0) and for a fallback past an open breaker.
 */
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import pino from 'pino';
import {
  createFallbackChain,
  createLeanOpenAICompatibleAdapter,
  simulatorRegistry,
  type ChatMessage,
  type CompletionResult,
  type ProviderAdapter,
  type StreamEvent,
  type Target,
} from '../src/data-plane/providers';
import { canPin, median, runCalls, spawnSimulator } from './lib';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '8000' },
    rounds: { type: 'string', default: '6' },
    concurrency: { type: 'string', default: '16' },
  },
});
const CALLS = Number(values.calls);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = Number(values.concurrency);

const messages: ChatMessage[] = [
  { role: 'system', content: 'You are a concise support assistant for an online store. '.repeat(16).trim() },
  { role: 'user', content: 'What is the capital of France?' },
];
const primary: Target = { provider: 'openai', model: 'gpt-4o' };
const secondary: Target = { provider: 'deepseek', model: 'deepseek-chat' };

type Call = () => Promise<unknown>;

async function main(): Promise<void> {
  const pinned = canPin();
  if (pinned) execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  const { child, url } = await spawnSimulator(
    pinned,
    { seed: 1, default: { latencyMs: { median: 0 }, outputTokens: 60 } },
    'chain-bench-',
  );
  const lean = createLeanOpenAICompatibleAdapter({
    registry: simulatorRegistry(url),
    connections: CONCURRENCY,
  });
  const chain = createFallbackChain({ adapter: lean, perAttemptTimeoutMs: 30_000 });
  const targets = [primary, secondary];
  try {
    console.log(
      `1) over HTTP: simulator pid ${child.pid}${pinned ? ' on core 1, client on core 0' : ' (not pinned)'}, ` +
        `latency 0, ${CONCURRENCY} concurrent, ${CALLS} calls x ${ROUNDS} rounds each`,
    );
    const direct: Call = () => lean.complete(primary, messages, { timeoutMs: 30_000 });
    const viaChain: Call = () => chain.complete(targets, messages);
    await measure(direct, 2000, CONCURRENCY);
    await measure(viaChain, 2000, CONCURRENCY);
    const d: number[] = [];
    const c: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const order: [Call, number[]][] =
        round % 2 === 0
          ? [
              [direct, d],
              [viaChain, c],
            ]
          : [
              [viaChain, c],
              [direct, d],
            ];
      for (const [call, out] of order) out.push(await measure(call, CALLS, CONCURRENCY));
    }
    const diffs = d.map((value, i) => c[i] - value);
    console.log(
      `   adapter directly      ${median(d).toFixed(1).padStart(7)} µs CPU/call   (rounds ${fmt(d)})`,
    );
    console.log(
      `   through the chain     ${median(c).toFixed(1).padStart(7)} µs CPU/call   (rounds ${fmt(c)})`,
    );
    console.log(
      `   chain overhead        ${median(diffs).toFixed(1).padStart(7)} µs CPU/call   (per-round differences ${fmt(diffs)})`,
    );
  } finally {
    await chain.close();
    await lean.close();
    child.kill('SIGTERM');
  }

  // 2) In-process, no I/O: what the chain itself costs.
  // Results are built as object literals, like the real adapters build them (see openai-wire.ts). (An
  // object made by spreading another one is far slower to extend in V8, which would skew this.)
  const result = (target: Target): CompletionResult => {
    const made: CompletionResult = {
      target,
      text: 'Paris.',
      finishReason: 'stop',
      usage: { inputTokens: 300, outputTokens: 3 },
      latencyMs: 1,
      costUsd: 0.00078,
      costKnown: true,
    };
    made.providerRequestId = 'chatcmpl-1';
    return made;
  };
  const memory: ProviderAdapter = {
    complete: async (target) => result(target),
    async *stream(target): AsyncGenerator<StreamEvent> {
      yield { type: 'delta', text: 'Paris.' };
      yield { type: 'done', result: result(target) };
    },
  };
  let now = 0;
  const memChain = createFallbackChain({ adapter: memory, breaker: { now: () => now } });
  const N = 400_000;
  const memDirect: Call = () => memory.complete(primary, messages, { timeoutMs: 30_000 });
  const memViaChain: Call = () => memChain.complete(targets, messages);
  const memStreamDirect: Call = async () => {
    for await (const event of memory.stream(primary, messages)) void event;
  };
  const memStreamChain: Call = async () => {
    for await (const event of memChain.stream(targets, messages)) void event;
  };
  for (const call of [memDirect, memViaChain, memStreamDirect, memStreamChain])
    await measure(call, 50_000, 1);
  const md: number[] = [];
  const mc: number[] = [];
  const sd: number[] = [];
  const sc: number[] = [];
  for (let round = 0; round < 5; round++) {
    md.push(await measure(memDirect, N, 1));
    mc.push(await measure(memViaChain, N, 1));
    sd.push(await measure(memStreamDirect, N / 4, 1));
    sc.push(await measure(memStreamChain, N / 4, 1));
  }
  // Fallback past an open circuit: open the primary's breaker, then every call skips it (depth 1).
  const fallbackChain = createFallbackChain({
    adapter: memory,
    breaker: { failureThreshold: 1, cooldownMs: 1e12, now: () => now },
    logger: pino({ level: 'silent' }),
  });
  fallbackChain.breaker!.onFailure('openai:gpt-4o', fallbackChain.breaker!.acquire('openai:gpt-4o'));
  const memFallback: Call = () => fallbackChain.complete(targets, messages);
  await measure(memFallback, 50_000, 1);
  const mf: number[] = [];
  for (let round = 0; round < 5; round++) mf.push(await measure(memFallback, N, 1));
  now = 1;

  console.log(`2) in-process, adapter without I/O (${N} calls x 5 rounds, sequential)`);
  console.log(
    `   complete: adapter ${median(md).toFixed(2)} µs, chain ${median(mc).toFixed(2)} µs -> overhead ${(median(mc) - median(md)).toFixed(2)} µs/call`,
  );
  console.log(
    `   stream:   adapter ${median(sd).toFixed(2)} µs, chain ${median(sc).toFixed(2)} µs -> overhead ${(median(sc) - median(sd)).toFixed(2)} µs/call`,
  );
  console.log(
    `   complete, primary skipped by an open breaker (depth 1): ${median(mf).toFixed(2)} µs -> overhead ${(median(mf) - median(md)).toFixed(2)} µs/call`,
  );
}

/** CPU µs per call over `calls` calls with `concurrency` in flight. */
async function measure(call: Call, calls: number, concurrency: number): Promise<number> {
  return (await runCalls(call, calls, concurrency)).cpuUsPerCall;
}

function fmt(values: number[]): string {
  return values.map((v) => v.toFixed(0)).join(' ');
}

await main();
