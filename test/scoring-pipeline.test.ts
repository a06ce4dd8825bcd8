import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { rolloutWorkflow } from '../workflows';
import { statusQuery } from '../workflows/messages';
import type { RolloutSpecInput } from '../src/decision/config/rollout-spec';
import { startTestStack, type TestStack } from './helpers/stack';
import { saveHistory, waitForStatus } from './helpers/rollout';
import { OPEN_PROMPTS } from './helpers/open-prompts';

/**
 * Quality evidence on production-like traffic: open prompts (no reference answers), an LLM judge that
 * takes 1.5 s per answer (the simulator, through the real SDK), and the team's own HTTP evaluator.
 */
describe('scoring pipeline', () => {
  let stack: TestStack;
  let evalServer: http.Server;
  const evalCalls = { fail: 0, hang: 0 };

  beforeAll(async () => {
    // The team's eval service, failing as real ones do: 500s, or no answer at all.
    evalServer = http.createServer((req, res) => {
      const mode = req.url === '/fail' ? 'fail' : 'hang';
      evalCalls[mode] += 1;
      req.resume();
      if (mode === 'fail') {
        res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"eval db down"}');
      }
      // 'hang': never answers; the evaluator's timeout gives up.
    });
    await new Promise<void>((r) => evalServer.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(evalServer.address() as AddressInfo).port}`;
    stack = await startTestStack(
      {
        default: { latencyMs: { median: 2, p99: 6 }, accuracy: 0.95 },
        models: {
          'claude-sonnet-4': { accuracy: 0.95 },
          'gpt-4o': { accuracy: 0.95 },
          // Off topic 30% of the time: a judge's mean of 3.8 against 4.8, 20% worse.
          'gpt-4o-mini': { accuracy: 0.7 },
          'broken-primary': { errorRate: 1, errorKinds: { server_error: 1 } },
          // A realistic judge: 1.5 s an answer, and careless 3% of the time.
          'judge-large': { latencyMs: { median: 1500, p99: 2200 }, accuracy: 0.97 },
        },
      },
      {
        httpServices: {
          'evals-fail': { url: `${base}/fail` },
          'evals-hang': { url: `${base}/hang`, timeoutMs: 1_000 },
        },
      },
    );
  });

  afterAll(async () => {
    await stack?.close();
    evalServer?.closeAllConnections();
    await new Promise((r) => evalServer?.close(r));
  });

  function spec(
    route: string,
    candidate: RolloutSpecInput['candidate'],
    extra: Partial<RolloutSpecInput> = {},
  ) {
    return {
      route,
      candidate,
      actor: 'test',
      canary: { steps: [2000, 5000, 10000] },
      evaluation: {
        interval: '2s',
        scoreBatch: 300,
        evaluators: [{ kind: 'judge', target: 'openai:judge-large' }],
      },
      triggers: { interval: '2s', minRequests: 20, minScores: 10 },
      bake: { duration: '2s' },
      policy: {
        policy: 'sequential',
        sequential: {
          promotion: { minCanaryScoredPerStep: 15, minCanaryRequestsPerStep: 20 },
          finalGate: { toleranceRel: 0.1 },
        },
      },
      ...extra,
    } as RolloutSpecInput;
  }

  async function start(route: string, s: RolloutSpecInput): Promise<WorkflowHandle<typeof rolloutWorkflow>> {
    return stack.client.workflow.start(rolloutWorkflow, {
      taskQueue: stack.env.taskQueue,
      workflowId: `rollout-${route}`,
      args: [s],
    });
  }

  const waitFor = waitForStatus;

  async function sources(route: string): Promise<Record<string, number>> {
    const { rows } = await stack.db.pool.query<{ source: string; n: number }>(
      `SELECT coalesce(quality_source, score_error, 'unscored') AS source, count(*)::int AS n
         FROM request_events WHERE route = $1 AND answer IS NOT NULL GROUP BY 1`,
      [route],
    );
    return Object.fromEntries(rows.map((r) => [r.source, r.n]));
  }

  it.concurrent(
    'with a 1.5 s judge on open prompts, an equal candidate reaches 100% and a 20%-worse one is rolled back',
    async () => {
      await stack.createRoute('judge-equal', 'anthropic:claude-sonnet-4');
      await stack.createRoute('judge-worse', 'anthropic:claude-sonnet-4');
      const t1 = stack.traffic('judge-equal', 12, { prompts: OPEN_PROMPTS });
      const t2 = stack.traffic('judge-worse', 12, { prompts: OPEN_PROMPTS });
      const equal = await start('judge-equal', spec('judge-equal', 'openai:gpt-4o'));
      const worse = await start('judge-worse', spec('judge-worse', 'openai:gpt-4o-mini'));
      const [good, bad] = await Promise.all([equal.result(), worse.result()]);
      await Promise.all([t1.stop(), t2.stop()]);

      expect(good.result).toBe('completed');
      expect(good.stable).toBe('openai:gpt-4o');
      expect(bad.result).toBe('rolled_back');
      // Rolled back on the judge's scores: by the policy's quality test, or by the quality trigger when that
      // one sees enough low scores first (both read the same judged answers).
      expect(bad.reason).toMatch(/canary policy \(sequential\): quality|trigger fired: avg_quality_score/);
      // Every score came from the judge: no reference answer exists for these prompts.
      for (const route of ['judge-equal', 'judge-worse']) {
        const bySource = await sources(route);
        expect(Object.keys(bySource).filter((k) => k !== 'unscored' && k !== 'judge')).toEqual([]);
        expect(bySource.judge).toBeGreaterThan(30);
      }
      const status = await equal.query(statusQuery);
      expect(status.scoring!.scored.candidate).toBeGreaterThan(30);
      await saveHistory(stack.client, worse.workflowId, undefined);
      expect(status.scoring!.noQualityEvidence).toBe(false);
    },
    400_000,
  );

  it.concurrent.each(['fail', 'hang'] as const)(
    'an HTTP evaluator that %ss is counted and reported, and the rollout holds with the reason shown',
    async (mode) => {
      const route = `http-eval-${mode}`;
      await stack.createRoute(route, 'anthropic:claude-sonnet-4');
      const traffic = stack.traffic(route, 10, { prompts: OPEN_PROMPTS });

      const handle = await start(
        route,
        spec(route, 'openai:gpt-4o', {
          evaluation: {
            interval: '1s',
            evaluators: [{ kind: 'http', name: `evals-${mode}` }],
            noEvidenceAfter: '8s',
          },
        }),
      );
      const status = await waitFor(
        handle,
        (s) =>
          s.scoring?.noQualityEvidence === true &&
          !!s.decisions.at(-1)?.reasons.some((r) => r.includes('no quality evidence')),
        40_000,
      );
      await traffic.stop();
      expect(evalCalls[mode]).toBeGreaterThan(0);
      const reason = mode === 'fail' ? 'http:evals-fail: HTTP 500' : 'http:evals-hang: timeout';
      expect(status.scoring!.failures[reason]).toBeGreaterThan(0);
      expect(status.scoring!.scored.candidate).toBe(0);
      expect(status.phase).toBe('canary');
      expect(status.shareBps).toBe(2000); // holds at the first step
      const last = status.decisions.at(-1)!;
      expect(last.action).toBe('hold');
      expect(last.reasons.join('\n')).toContain(reason);
      expect(last.reasons.join('\n')).toMatch(/no quality evidence/);
      // Nothing was passed off as a score.
      const bySource = await sources(route);
      expect(Object.keys(bySource).some((k) => k.startsWith('http') && !k.includes(':'))).toBe(false);
      expect(bySource[reason]).toBeGreaterThan(0);
      const { rows } = await stack.db.pool.query(
        `SELECT count(*)::int AS n FROM request_events WHERE route = $1 AND quality_score IS NOT NULL`,
        [route],
      );
      expect(rows[0].n).toBe(0);
      await handle.cancel();
    },
    120_000,
  );

  it.concurrent(
    'a candidate whose primary fails and whose fallback answers well is rolled back, not promoted',
    async () => {
      const route = 'fallback-hides';
      await stack.createRoute(route, 'anthropic:claude-sonnet-4');
      const traffic = stack.traffic(route, 20);
      const handle = await start(
        route,
        spec(
          route,
          { target: 'openai:broken-primary', fallbacks: ['openai:gpt-4o'] },
          { evaluation: { interval: '1s' } }, // reference grading: fast, and the fallback's answers are good
        ),
      );
      const outcome = await handle.result();
      await traffic.stop();
      expect(outcome.result).toBe('rolled_back');
      const { rows } = await stack.db.pool.query<{ fb: number }>(
        `SELECT count(*)::int AS fb FROM request_events WHERE route = $1 AND tag = 'canary' AND fallback_depth > 0 AND error_class IS NULL`,
        [route],
      );
      expect(rows[0].fb).toBeGreaterThan(0); // users were served: only the candidate's own evidence failed
      const status = await handle.query(statusQuery);
      expect(JSON.stringify(status.decisions)).toMatch(
        /came from a fallback: counted as failures of openai:broken-primary/,
      );
    },
    120_000,
  );
});
