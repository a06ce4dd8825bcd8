/**
 * Time to a decision with a 1.5 s LLM judge against the same rollouts graded by the reference set, at 2, 12
 * and 50 requests/s: an equal candidate (time to its first promotion step) and a 20%-worse one (time to its
 * rollback). One worker, the simulator as every model. The judge path should cost no more than 1.5x.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx bench/scoring-decision.ts
 *
 * BENCH_RATES (default 2,12,50) and BENCH_CAP_S (default 300: a run without a decision by then is reported
 * as such). Evaluation every 5 s; policy minimums as in the tests (15 scored canary answers per step).
 */
import { rolloutWorkflow } from '../workflows';
import { statusQuery } from '../workflows/messages';
import { startDevStack } from '../src/tooling/dev-stack';
import { openDatabase } from '../src/store/database';
import { createRoute } from '../src/store/routing-state';
import { parseTargetWithFallbacks } from '../src/decision/config/target';
import { startTraffic } from '../src/tooling/traffic';
import { OPEN_PROMPTS } from '../test/helpers/open-prompts';
import { databaseUrlOrExit, scratchDatabase } from './lib';

const rates = (process.env.BENCH_RATES ?? '2,12,50').split(',').map(Number);
const capMs = Number(process.env.BENCH_CAP_S ?? 300) * 1000;
const scratch = await scratchDatabase(databaseUrlOrExit(), 'bench_decision');
const db = await openDatabase({ url: scratch.url });
const stack = await startDevStack({
  db,
  taskQueue: 'bench-decision',
  simulator: {
    default: { latencyMs: { median: 5, p99: 15 }, accuracy: 0.95 },
    models: {
      'claude-sonnet-4': { accuracy: 0.95 },
      'gpt-4o': { accuracy: 0.95 },
      'gpt-4o-mini': { accuracy: 0.7 }, // 3.8 against 4.8 on a 1-5 scale: 20% worse
      'judge-large': { latencyMs: { median: 1500, p99: 2200 }, accuracy: 0.97 },
    },
  },
});

interface Run {
  rate: number;
  grader: 'judge 1.5 s' | 'reference';
  candidate: 'equal' | '20% worse';
  seconds: number | null;
  decision: string;
}

async function one(rate: number, grader: Run['grader'], candidate: Run['candidate']): Promise<Run> {
  const route = `r${rate}-${grader === 'reference' ? 'ref' : 'judge'}-${candidate === 'equal' ? 'eq' : 'worse'}`;
  await createRoute(
    stack.db.pool,
    { name: route, blue: parseTargetWithFallbacks({ target: 'anthropic:claude-sonnet-4' }) },
    { actor: 'bench', reason: 'bench route' },
  );
  const traffic = startTraffic({
    router: stack.router,
    route,
    ratePerSec: rate,
    prompts: grader === 'reference' ? undefined : OPEN_PROMPTS,
  });
  const t0 = Date.now();
  const handle = await stack.client.workflow.start(rolloutWorkflow, {
    taskQueue: stack.taskQueue,
    workflowId: `rollout-${route}`,
    args: [
      {
        route,
        candidate: candidate === 'equal' ? 'openai:gpt-4o' : 'openai:gpt-4o-mini',
        evaluation: {
          interval: '5s',
          ...(grader === 'reference'
            ? {}
            : { evaluators: [{ kind: 'judge', target: 'openai:judge-large' }] }),
        },
        triggers: { interval: '5s' },
        policy: {
          sequential: {
            promotion: { minCanaryScoredPerStep: 15, minCanaryRequestsPerStep: 20 },
            finalGate: { toleranceRel: 0.1 },
          },
        },
      },
    ],
  });
  let result: Run = { rate, grader, candidate, seconds: null, decision: `none in ${capMs / 1000} s` };
  while (Date.now() - t0 < capMs) {
    const s = await handle.query(statusQuery);
    const decided =
      candidate === 'equal' ? s.steps.length > 1 || s.outcome !== undefined : s.outcome !== undefined;
    if (decided) {
      const seconds = Math.round((Date.now() - t0) / 100) / 10;
      const what = s.outcome?.result === 'rolled_back' ? 'rolled back' : `promoted to ${s.shareBps / 100}%`;
      result = { rate, grader, candidate, seconds, decision: what };
      break;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  await traffic.stop();
  await handle.cancel().catch(() => {});
  return result;
}

try {
  const runs: Run[] = [];
  for (const rate of rates) {
    const batch = await Promise.all([
      one(rate, 'judge 1.5 s', 'equal'),
      one(rate, 'reference', 'equal'),
      one(rate, 'judge 1.5 s', '20% worse'),
      one(rate, 'reference', '20% worse'),
    ]);
    runs.push(...batch);
    console.table(batch);
  }
  console.log('time to a decision: equal = first promotion step, 20% worse = rollback (one worker)');
  console.table(runs);
  for (const rate of rates) {
    for (const candidate of ['equal', '20% worse'] as const) {
      const j = runs.find((r) => r.rate === rate && r.candidate === candidate && r.grader !== 'reference')!;
      const ref = runs.find((r) => r.rate === rate && r.candidate === candidate && r.grader === 'reference')!;
      const ratio = j.seconds !== null && ref.seconds ? (j.seconds / ref.seconds).toFixed(2) + 'x' : 'n/a';
      console.log(
        `${rate}/s ${candidate}: judge ${j.seconds ?? '-'} s vs reference ${ref.seconds ?? '-'} s -> ${ratio}`,
      );
    }
  }
} finally {
  await stack.stop();
  await scratch.drop();
}
