import type pg from 'pg';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { EvaluatorConfig } from '../src/decision/config/evaluators';
import type { FallbackChain } from '../src/data-plane/providers/fallback-chain';
import { endpointIssues } from '../src/data-plane/providers/providers-file';
import { defaultPricing } from '../src/data-plane/providers/pricing';
import { judgeBudgetIssues } from '../src/decision/scoring/budget';
import type { ProviderRegistry } from '../src/data-plane/providers/registry';
import type { Target } from '../src/data-plane/providers/types';
import { combineOutcomes, type Combined } from '../src/decision/scoring/combine';
import {
  evaluatorsFor,
  InvalidEvaluatorError,
  referenceQuestion,
  runEvaluators,
  type EvaluationItem,
  type HttpEvaluatorService,
} from '../src/decision/scoring/evaluators';
import { gradeAnswer } from '../src/decision/scoring/reference';
import { judgePair, type PairVerdict } from '../src/decision/scoring/judge';
import { runPipeline } from '../src/decision/scoring/pipeline';
import type { ScoreReport } from '../src/decision/scoring/evidence';
import { allocateBatch } from '../src/decision/scoring/sampling';
import { ROLLUP_LEVELS, scoreRollupUpsert } from '../src/store/rollup-sql';
import type { ShadowVerdictCounts } from '../src/decision/policy';

export interface ScoringDeps {
  pool: pg.Pool;
  /** For the LLM judge; without it, a judge evaluator fails (and says so). */
  chain?: FallbackChain;
  /** The team's eval services, by name (configured on the worker, never in a spec). */
  httpServices?: Record<string, HttpEvaluatorService>;
  /** The worker's providers: a judge naming a `baseUrl` off their allowlist is refused before any call,
   * and a judge budget whose judge has no price in their table (default: the built-in prices). */
  providers?: Pick<ProviderRegistry, 'endpointProblem'> & Partial<Pick<ProviderRegistry, 'pricing'>>;
}

/**
 * A judge target whose `baseUrl` the worker's configuration does not allow is refused (non-retryable, naming
 * the field), before any answer is read or any key is: a spec reaches the worker from any Temporal client.
 */
function refuseForeignJudges(
  deps: ScoringDeps,
  req: Pick<ScoreRequest, 'judge' | 'evaluators' | 'budgetUsd'>,
): void {
  const issues = judgeBudgetIssues(req, deps.providers?.pricing ?? defaultPricing);
  if (deps.providers)
    issues.push(
      ...endpointIssues(deps.providers, [
        ['evaluation.judge', req.judge],
        ...(req.evaluators ?? []).map((e, i): [string, Target | undefined] => [
          `evaluation.evaluators[${i}].target`,
          e.kind === 'judge' ? e.target : undefined,
        ]),
      ]),
    );
  if (issues.length > 0)
    throw ApplicationFailure.nonRetryable(
      `invalid rollout spec: ${issues.map((i) => `${i.field}: ${i.reason}`).join('; ')}`,
      'InvalidSpec',
    );
}

export interface ScoreRequest {
  route: string;
  fromMs: number;
  /** Answers per batch at most. */
  limit: number;
  /** The judge of the default evaluator list (reference, feedback, judge). */
  judge?: Target;
  /** An explicit evaluator list, combined by weight (replaces the default list). */
  evaluators?: EvaluatorConfig[];
  /** Evaluations in flight at most (default 16: a 1.5 s judge then scores ~600 answers a minute). */
  concurrency?: number;
  /** No new evaluation starts after this long (default 25 s: older rollouts give the activity 1 minute, and
   * calls in flight may take their 30 s timeout); those in flight finish. */
  maxBatchMs?: number;
  /** Per judge call (default 30 s). */
  judgeTimeoutMs?: number;
  /** Judge spend of this rollout (since `fromMs`) at most, USD; none: unbounded. */
  budgetUsd?: number;
  /** Fraction of each arm's answers eligible for scoring (default 1), a fixed sample by event id. */
  sample?: { stable?: number; candidate?: number };
}

export type { ScoreReport };

interface CapturedRow {
  id: string;
  /** created_at as text (exact to the microsecond): with the id, finds the event in its day's partition. */
  created: string;
  /** created_at in epoch milliseconds: for matching the arms' minutes and ordering the batch by time. */
  at_ms: number;
  request_id: string;
  tag: string;
  reference_id: string | null;
  prompt: unknown;
  answer: string;
}

function lastUserMessage(prompt: unknown): string {
  const messages = Array.isArray(prompt) ? (prompt as Array<{ role?: string; content?: unknown }>) : [];
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i].role === 'user' && typeof messages[i].content === 'string')
      return messages[i].content as string;
  }
  return '';
}

const COMMIT_CHUNK = 32;
const COMMIT_FLUSH_MS = 500;

const UNSCORED = `route = $1 AND quality_score IS NULL AND score_error IS NULL AND answer IS NOT NULL
  AND error_class IS NULL AND created_at >= to_timestamp($2::float8 / 1000)`;

/** Inside an activity: its context; called directly (benchmarks, scripts): none. */
function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/**
 * Scoring of captured answers by the rollout's evaluators, as a pipeline: the candidate's answers first,
 * bounded concurrency, heartbeats with progress, and scores committed in small chunks so that a retried
 * batch never redoes (or double-counts) finished work. An answer whose evaluator failed keeps no score:
 * it is counted and reported with its reason.
 */
export function createScoringActivities(deps: ScoringDeps) {
  const { pool } = deps;

  async function spentUsd(route: string, fromMs: number): Promise<number> {
    const { rows } = await pool.query<{ cost: number }>(
      `SELECT coalesce(sum(score_cost_usd), 0)::float8 AS cost FROM request_events
        WHERE route = $1 AND score_cost_usd IS NOT NULL AND created_at >= to_timestamp($2::float8 / 1000)`,
      [route, fromMs],
    );
    return rows[0].cost;
  }

  async function selectBatch(req: ScoreRequest): Promise<CapturedRow[]> {
    const cols = `id, created_at::text AS created, (extract(epoch FROM created_at) * 1000)::float8 AS at_ms,
      request_id, tag, reference_id, prompt, answer`;
    // A fixed pseudo-random sample by event id (Knuth's multiplicative hash): the same answers are in or
    // out on every batch, so a sampled-out answer is never picked up later.
    const hash = '((id % 1000003) * 2654435761) % 10000';
    const sampled = `AND ${hash} < $4`;
    const rate = (r: number | undefined) => Math.round(Math.min(1, Math.max(0, r ?? 1)) * 10_000);
    // The candidate's answers oldest first: a backlog is worked through in order.
    const candidate = await pool.query<CapturedRow>(
      `SELECT ${cols} FROM request_events WHERE ${UNSCORED} AND tag IN ('canary', 'shadow') ${sampled}
        ORDER BY id LIMIT $3`,
      [req.route, req.fromMs, req.limit, rate(req.sample?.candidate)],
    );
    // Stable's sample from the same minutes as the candidate's batch, spread over them (by the same hash,
    // not by id, so a short batch does not take only the earliest): the quality test compares the arms, and
    // under a judge backlog the candidate's oldest answers and stable's newest could be hours apart, a
    // comparison of two different periods (traffic mix, time of day, upstream incidents). With no candidate
    // answer to match (none yet, or none sampled), the newest stable answers: a sample of the current stable.
    const created = candidate.rows.map((r) => r.created);
    const stable = await pool.query<CapturedRow>(
      created.length > 0
        ? `SELECT ${cols} FROM request_events WHERE ${UNSCORED} AND tag = 'stable' ${sampled}
             AND created_at >= (SELECT date_trunc('minute', min(t)) FROM unnest($5::timestamptz[]) AS t)
             AND created_at < (SELECT date_trunc('minute', max(t)) + interval '1 minute' FROM unnest($5::timestamptz[]) AS t)
           ORDER BY ${hash}, id LIMIT $3`
        : `SELECT ${cols} FROM request_events WHERE ${UNSCORED} AND tag = 'stable' ${sampled}
           ORDER BY id DESC LIMIT $3`,
      [req.route, req.fromMs, req.limit, rate(req.sample?.stable), ...(created.length > 0 ? [created] : [])],
    );
    // Only stable answers from the minutes of the candidate answers this batch takes (the range above was
    // of every candidate answer read, before the allocation).
    const minute = (ms: number) => Math.floor(ms / 60_000);
    const cAll = candidate.rows;
    const sIn = (take: number) =>
      take === 0 || cAll.length === 0
        ? stable.rows
        : stable.rows.filter(
            (r) =>
              minute(r.at_ms) >= minute(cAll[0].at_ms) && minute(r.at_ms) <= minute(cAll[take - 1].at_ms),
          );
    const first = allocateBatch(req.limit, cAll.length, stable.rows.length);
    const take = allocateBatch(req.limit, cAll.length, sIn(first.candidate).length);
    const c = cAll.slice(0, take.candidate);
    const s = sIn(take.candidate)
      .slice(0, take.stable)
      .sort((a, b) => a.at_ms - b.at_ms);
    // Merged by time (candidate first at the same instant): a batch cut short by its deadline has scored
    // both arms, and from the same minutes.
    const out: CapturedRow[] = [];
    for (let i = 0, j = 0; i < c.length || j < s.length;) {
      if (j >= s.length || (i < c.length && c[i].at_ms <= s[j].at_ms)) out.push(c[i++]);
      else out.push(s[j++]);
    }
    return out;
  }

  async function backlog(req: ScoreRequest): Promise<{ stable: number; candidate: number }> {
    const { rows } = await pool.query<{ stable: number; candidate: number }>(
      `SELECT count(*) FILTER (WHERE tag = 'stable')::int AS stable,
              count(*) FILTER (WHERE tag <> 'stable')::int AS candidate
         FROM request_events WHERE ${UNSCORED}`,
      [req.route, req.fromMs],
    );
    return rows[0];
  }

  async function commit(results: Array<{ item: CapturedRow; result: Combined }>): Promise<void> {
    // Only rows still unscored are written: a batch that overlaps a retried one never scores a row twice.
    // The same statement adds the new scores to the per-minute rollups the decisions read.
    await pool.query(
      `WITH upd AS (
         UPDATE request_events e
            SET quality_score = u.score, quality_source = u.source, score_error = u.error,
                score_cost_usd = u.cost, scored_at = now()
           FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::text[], $5::float8[], $6::timestamptz[])
                AS u(id, score, source, error, cost, created)
          WHERE e.id = u.id AND e.created_at = u.created
            AND e.quality_score IS NULL AND e.score_error IS NULL
      RETURNING e.route, e.tag, e.target, e.routing_version, e.created_at, e.error_class, e.fallback_depth,
                e.quality_score), minutes AS (${scoreRollupUpsert(ROLLUP_LEVELS[0], 'upd')})
       ${scoreRollupUpsert(ROLLUP_LEVELS[1], 'upd')}`,
      [
        results.map((r) => r.item.id),
        results.map((r) => (r.result.kind === 'scored' ? r.result.score : null)),
        results.map((r) => (r.result.kind === 'scored' ? r.result.source : null)),
        results.map((r) =>
          r.result.kind === 'failed'
            ? r.result.error.slice(0, 200)
            : r.result.kind === 'not-applicable'
              ? 'not applicable'
              : null,
        ),
        results.map((r) => r.result.costUsd),
        results.map((r) => r.item.created),
      ],
    );
  }

  /** An evaluator the spec describes but the worker cannot build fails the rollout, naming the field. */
  function buildEvaluators(req: ScoreRequest): ReturnType<typeof evaluatorsFor> {
    try {
      return evaluatorsFor(req.evaluators, req.judge, {
        pool,
        chain: deps.chain,
        httpServices: deps.httpServices,
        judgeTimeoutMs: req.judgeTimeoutMs,
      });
    } catch (err) {
      if (!(err instanceof InvalidEvaluatorError)) throw err;
      throw ApplicationFailure.nonRetryable(`invalid rollout spec: ${err.message}`, 'InvalidSpec');
    }
  }

  return {
    /** Scores a batch of the route's unscored answers; see ScoreReport. */
    async scoreAnswers(req: ScoreRequest): Promise<ScoreReport> {
      refuseForeignJudges(deps, req);
      const context = activityContext();
      const startedAt = Date.now();
      const { evaluators, mode } = buildEvaluators(req);
      const spentBefore = await spentUsd(req.route, req.fromMs);
      const rows = await selectBatch(req);
      const report: ScoreReport = {
        scored: 0,
        failed: 0,
        notApplicable: 0,
        bySource: {},
        byArm: { stable: { scored: 0, failed: 0 }, candidate: { scored: 0, failed: 0 } },
        failures: {},
        costUsd: 0,
        totalCostUsd: spentBefore,
        budgetExhausted: false,
        backlog: { stable: 0, candidate: 0 },
      };
      let spentInBatch = 0;
      const overBudget = () => req.budgetUsd !== undefined && spentBefore + spentInBatch >= req.budgetUsd;
      await runPipeline<CapturedRow, Combined>({
        items: rows,
        concurrency: req.concurrency ?? 16,
        // Committed every half second, or sooner at 32: a slow judge's few results are not held back, and
        // fast evaluators (reference, checks) do not cost a database round trip per handful of answers.
        chunkSize: COMMIT_CHUNK,
        flushMs: COMMIT_FLUSH_MS,
        deadlineMs: startedAt + (req.maxBatchMs ?? 25_000),
        signal: context?.cancellationSignal,
        mayStart: () => !overBudget(),
        async evaluate(row, signal) {
          const item: EvaluationItem = {
            requestId: row.request_id,
            route: req.route,
            tag: row.tag,
            messages: row.prompt,
            question: lastUserMessage(row.prompt),
            answer: row.answer,
            referenceId: row.reference_id,
          };
          const combined = combineOutcomes(await runEvaluators(evaluators, mode, item, signal), mode);
          spentInBatch += combined.costUsd;
          return combined;
        },
        async commit(chunk) {
          await commit(chunk);
          for (const { item, result } of chunk) {
            const arm = item.tag === 'stable' ? report.byArm.stable : report.byArm.candidate;
            report.costUsd += result.costUsd;
            if (result.kind === 'scored') {
              report.scored += 1;
              arm.scored += 1;
              report.bySource[result.source] = (report.bySource[result.source] ?? 0) + 1;
            } else if (result.kind === 'failed') {
              report.failed += 1;
              arm.failed += 1;
              report.failures[result.error] = (report.failures[result.error] ?? 0) + 1;
            } else report.notApplicable += 1;
          }
        },
        progress: (p) =>
          context?.heartbeat({ ...p, scored: report.scored, failed: report.failed, costUsd: report.costUsd }),
      });
      report.totalCostUsd = spentBefore + report.costUsd;
      report.budgetExhausted = overBudget();
      report.backlog = await backlog(req);
      return report;
    },
    /**
     * Compares pending shadow pairs (reference grades, else a position-swapped LLM judge, else a tie) and
     * returns the verdict counts and shadow cost of the route since `fromMs`.
     */
    async compareShadowPairs(
      req: ScoreRequest,
    ): Promise<ShadowVerdictCounts & { costUsd: number; pending: number; failed: number }> {
      refuseForeignJudges(deps, req);
      const { rows } = await pool.query<{
        id: string;
        prompt: unknown;
        reference_id: string | null;
        stable_answer: string | null;
        stable_error: string | null;
        shadow_answer: string | null;
        shadow_error: string | null;
      }>(
        `SELECT sc.id, s.prompt, s.reference_id, s.answer AS stable_answer, s.error_class AS stable_error,
                sh.answer AS shadow_answer, sh.error_class AS shadow_error
           FROM shadow_comparisons sc
           JOIN request_events s  ON s.request_id = sc.request_id AND s.tag IN ('stable', 'canary') AND s.route = sc.route
           JOIN request_events sh ON sh.request_id = sc.request_id AND sh.tag = 'shadow' AND sh.route = sc.route
          WHERE sc.route = $1 AND sc.verdict IS NULL AND sc.compared_at IS NULL
            AND sc.created_at >= to_timestamp($2::float8 / 1000)
          ORDER BY sc.id LIMIT $3`,
        [req.route, req.fromMs, req.limit],
      );
      type Compared = {
        id: string;
        verdict: PairVerdict | null;
        stableScore: number | null;
        shadowScore: number | null;
        judge: string;
      };
      const context = activityContext();
      // Pairs through the same pipeline as single answers: a pairwise judge asks twice (positions
      // swapped), so at seconds per call they must run side by side and commit as they finish.
      await runPipeline<(typeof rows)[number], Compared>({
        items: rows,
        concurrency: req.concurrency ?? 16,
        deadlineMs: Date.now() + (req.maxBatchMs ?? 25_000),
        signal: context?.cancellationSignal,
        async evaluate(row, signal) {
          const base = { id: row.id, stableScore: null, shadowScore: null };
          if (row.shadow_error && !row.stable_error)
            return { ...base, verdict: 'stable_better', judge: 'errors' };
          if (row.stable_error && !row.shadow_error)
            return { ...base, verdict: 'shadow_better', judge: 'errors' };
          if (row.stable_answer === null || row.shadow_answer === null)
            return { ...base, verdict: 'tie', judge: 'errors' };
          const question = referenceQuestion(row.reference_id, lastUserMessage(row.prompt));
          if (question) {
            const stableScore = gradeAnswer(question, row.stable_answer).score;
            const shadowScore = gradeAnswer(question, row.shadow_answer).score;
            const verdict: PairVerdict =
              shadowScore > stableScore
                ? 'shadow_better'
                : shadowScore < stableScore
                  ? 'stable_better'
                  : 'tie';
            return { id: row.id, verdict, stableScore, shadowScore, judge: 'reference' };
          }
          if (!req.judge || !deps.chain) return { ...base, verdict: 'tie', judge: 'no judge' };
          try {
            const verdict = await judgePair(
              deps.chain,
              req.judge,
              lastUserMessage(row.prompt),
              row.stable_answer,
              row.shadow_answer,
              { signal, timeoutMs: req.judgeTimeoutMs },
            );
            return { ...base, verdict, judge: 'llm-judge' };
          } catch (err) {
            // A failed comparison is no tie: it stays out of the counts, marked, and is not retried.
            const reason = (err as { errorClass?: string }).errorClass ?? 'error';
            return { ...base, verdict: null, judge: `failed: ${reason}` };
          }
        },
        async commit(chunk) {
          await pool.query(
            `UPDATE shadow_comparisons sc
                SET verdict = u.verdict, stable_score = u.stable_score, shadow_score = u.shadow_score,
                    judge = u.judge, compared_at = now()
               FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::float8[], $5::text[])
                    AS u(id, verdict, stable_score, shadow_score, judge)
              WHERE sc.id = u.id AND sc.verdict IS NULL AND sc.compared_at IS NULL`,
            [
              chunk.map((c) => c.result.id),
              chunk.map((c) => c.result.verdict),
              chunk.map((c) => c.result.stableScore),
              chunk.map((c) => c.result.shadowScore),
              chunk.map((c) => c.result.judge),
            ],
          );
        },
        progress: (p) => context?.heartbeat(p),
      });
      const counts = await pool.query<{ verdict: string | null; n: number }>(
        `SELECT CASE WHEN verdict IS NULL AND compared_at IS NOT NULL THEN 'failed' ELSE verdict END AS verdict,
                count(*)::int AS n FROM shadow_comparisons
          WHERE route = $1 AND created_at >= to_timestamp($2::float8 / 1000) GROUP BY 1`,
        [req.route, req.fromMs],
      );
      const n = (v: string | null) => counts.rows.find((r) => r.verdict === v)?.n ?? 0;
      const cost = await pool.query<{ cost: number }>(
        `SELECT coalesce(sum(cost_usd), 0)::float8 AS cost FROM request_events
          WHERE route = $1 AND tag = 'shadow' AND created_at >= to_timestamp($2::float8 / 1000)`,
        [req.route, req.fromMs],
      );
      return {
        shadowBetter: n('shadow_better'),
        stableBetter: n('stable_better'),
        ties: n('tie'),
        pending: n(null),
        failed: n('failed'),
        costUsd: cost.rows[0].cost,
      };
    },
  };
}
