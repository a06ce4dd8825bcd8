/**
 * Scoring throughput: answers judged per minute by one worker's scoring activity, at judge latencies of
 * 0.5, 1.5 and 5 s (the simulator as the judge, through the real OpenAI SDK path), with the default
 * concurrency (16) and, for comparison, one call at a time (how scoring ran before the pipeline).
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx bench/scoring.ts
 *
 * Each run fills a scratch database with captured answers to open prompts, runs one scoring batch bounded to
 * BENCH_SECONDS (default 30) of wall time, and counts the scores committed. Target: >= 300 a minute at 1.5 s.
 */
import { createScoringActivities } from '../activities/scoring';
import { createFallbackChain } from '../src/data-plane/providers/fallback-chain';
import { simulatorRegistry } from '../src/data-plane/providers/registry';
import { startSimulator } from '../src/tooling/simulator';
import { openDatabase } from '../src/store/database';
import { migrate } from '../src/store/migrate';
import { databaseUrlOrExit, scratchDatabase } from './lib';

const seconds = Number(process.env.BENCH_SECONDS ?? 30);
const baseUrl = databaseUrlOrExit();
const scratch = await scratchDatabase(baseUrl, 'bench_scoring');
const db = await openDatabase({ url: scratch.url });
await migrate(db.pool);

const LATENCIES = [500, 1500, 5000];
const sim = await startSimulator({
  scenario: {
    models: Object.fromEntries(
      LATENCIES.map((ms) => [`judge-${ms}`, { latencyMs: { median: ms, p99: ms * 1.3 }, accuracy: 0.97 }]),
    ),
  },
});
const chain = createFallbackChain({ registry: simulatorRegistry(sim.url), breaker: false });
const scoring = createScoringActivities({ pool: db.pool, chain });

const PROMPTS = [
  'How do I handle refunds for cancelled subscriptions?',
  'Can you explain the steps for migrating invoices between workspaces?',
  'What are common mistakes with configuring single sign-on with Okta?',
  'Give me a short checklist for troubleshooting webhook deliveries.',
];

async function fill(route: string, n: number): Promise<void> {
  await db.pool.query(
    `INSERT INTO request_events (request_id, route, tag, target, latency_ms, prompt, answer)
     SELECT 'r-' || $1 || '-' || i, $1, CASE WHEN i % 5 = 0 THEN 'canary' ELSE 'stable' END, 'openai:gpt-4o', 800,
            jsonb_build_array(jsonb_build_object('role', 'user', 'content', ($3::text[])[1 + i % 4])),
            'On refunds, subscriptions: here is what matters. The main consideration is the context.'
       FROM generate_series(1, $2) AS i`,
    [route, n, PROMPTS],
  );
}

interface Row {
  latency: string;
  concurrency: number;
  judged: number;
  failed: number;
  seconds: number;
  perMinute: number;
  cpuMsPerAnswer: number;
}

async function run(latencyMs: number, concurrency: number, windowS: number): Promise<Row> {
  const route = `bench-${latencyMs}-${concurrency}`;
  const expected = Math.ceil((concurrency / (latencyMs / 1000)) * windowS * 1.5) + 50;
  await fill(route, expected);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const report = await scoring.scoreAnswers({
    route,
    fromMs: 0,
    limit: 5000,
    evaluators: [{ kind: 'judge', target: { provider: 'openai', model: `judge-${latencyMs}` }, weight: 1 }],
    concurrency,
    maxBatchMs: windowS * 1000,
  });
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const done = report.scored + report.failed;
  return {
    latency: `${latencyMs / 1000} s`,
    concurrency,
    judged: report.scored,
    failed: report.failed,
    seconds: Number(wall.toFixed(1)),
    perMinute: Math.round((report.scored / wall) * 60),
    cpuMsPerAnswer: Number(((cpu.user + cpu.system) / 1000 / Math.max(1, done)).toFixed(2)),
  };
}

try {
  const rows: Row[] = [];
  for (const latency of LATENCIES) rows.push(await run(latency, 16, seconds));
  // Before the pipeline: one judge call after another.
  rows.push(await run(1500, 1, Math.min(seconds, 15)));
  console.log(
    `scoring throughput on one worker (batch bounded to ${seconds} s; judge = simulator via OpenAI SDK)`,
  );
  console.table(rows);
  const at15 = rows.find((r) => r.latency === '1.5 s' && r.concurrency === 16)!;
  const seq = rows.find((r) => r.concurrency === 1)!;
  console.log(
    `1.5 s judge: ${at15.perMinute}/min with concurrency 16 vs ${seq.perMinute}/min one at a time (${(at15.perMinute / Math.max(1, seq.perMinute)).toFixed(1)}x); target >= 300/min: ${at15.perMinute >= 300 ? 'met' : 'NOT met'}`,
  );
} finally {
  await chain.close();
  await sim.close();
  await db.close();
  await scratch.drop();
}
