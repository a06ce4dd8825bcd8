import type pg from 'pg';
import type { FallbackChain } from '../src/providers/fallback-chain';
import type { Target } from '../src/providers/types';
import { gradeAnswer } from '../src/scoring/reference';
import { feedbackScore, heuristicScore } from '../src/scoring/heuristics';
import { judgePair, judgeScore, type PairVerdict } from '../src/scoring/judge';
import { findQuestionByPrompt, loadQuestions, type Question } from '../src/simulator/questions';
import type { ShadowVerdictCounts } from '../src/policy';

export interface ScoringDeps {
  pool: pg.Pool;
  /** For the LLM judge; without it, answers lacking a reference fall to feedback and heuristics. */
  chain?: FallbackChain;
}

export interface ScoreRequest {
  route: string;
  fromMs: number;
  limit: number;
  judge?: Target;
}

interface CapturedRow {
  id: string;
  request_id: string;
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

function expectsJson(prompt: unknown): boolean {
  return /\bjson\b/i.test(JSON.stringify(prompt ?? ''));
}

let questionsById: Map<string, Question> | undefined;
function referenceFor(row: Pick<CapturedRow, 'reference_id' | 'prompt'>): Question | undefined {
  questionsById ??= new Map(loadQuestions().map((q) => [q.id, q]));
  return (
    (row.reference_id ? questionsById.get(row.reference_id) : undefined) ??
    findQuestionByPrompt(lastUserMessage(row.prompt))
  );
}

/**
 * Scoring of captured answers: reference grading where the question is known, else user feedback, else an
 * LLM judge, else heuristics. Bounded per call so that a tick's cost stays bounded however busy the route.
 */
export function createScoringActivities(deps: ScoringDeps) {
  const { pool } = deps;

  async function scoreOne(
    row: CapturedRow,
    judge: Target | undefined,
  ): Promise<{ score: number; source: string }> {
    const question = referenceFor(row);
    if (question) return { score: gradeAnswer(question, row.answer).score, source: 'reference' };
    const fb = await pool.query<{ score: number | null; thumbs: string | null }>(
      'SELECT score, thumbs FROM feedback WHERE request_id = $1 ORDER BY id DESC LIMIT 1',
      [row.request_id],
    );
    const fromFeedback = fb.rows[0] ? feedbackScore(fb.rows[0]) : null;
    if (fromFeedback !== null) return { score: fromFeedback, source: 'feedback' };
    if (judge && deps.chain) {
      const judged = await judgeScore(deps.chain, judge, lastUserMessage(row.prompt), row.answer).catch(
        () => null,
      );
      if (judged !== null) return { score: judged, source: 'judge' };
    }
    return { score: heuristicScore(row.answer, expectsJson(row.prompt)), source: 'heuristic' };
  }

  return {
    /** Scores up to `limit` not-yet-scored served answers of the route; returns how many, by source. */
    async scoreAnswers(req: ScoreRequest): Promise<{ scored: number; bySource: Record<string, number> }> {
      const { rows } = await pool.query<CapturedRow>(
        `SELECT id, request_id, reference_id, prompt, answer FROM request_events
          WHERE route = $1 AND quality_score IS NULL AND answer IS NOT NULL AND error_class IS NULL
            AND created_at >= to_timestamp($2::float8 / 1000)
          ORDER BY id LIMIT $3`,
        [req.route, req.fromMs, req.limit],
      );
      const bySource: Record<string, number> = {};
      const ids: string[] = [];
      const scores: number[] = [];
      const sources: string[] = [];
      for (const row of rows) {
        const { score, source } = await scoreOne(row, req.judge);
        ids.push(row.id);
        scores.push(score);
        sources.push(source);
        bySource[source] = (bySource[source] ?? 0) + 1;
      }
      if (ids.length > 0) {
        await pool.query(
          `UPDATE request_events e SET quality_score = u.score, quality_source = u.source, scored_at = now()
             FROM unnest($1::bigint[], $2::float8[], $3::text[]) AS u(id, score, source)
            WHERE e.id = u.id`,
          [ids, scores, sources],
        );
      }
      return { scored: ids.length, bySource };
    },

    /**
     * Compares pending shadow pairs (reference grades, else a position-swapped LLM judge, else a tie) and
     * returns the verdict counts and shadow cost of the route since `fromMs`.
     */
    async compareShadowPairs(
      req: ScoreRequest,
    ): Promise<ShadowVerdictCounts & { costUsd: number; pending: number }> {
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
          WHERE sc.route = $1 AND sc.verdict IS NULL AND sc.created_at >= to_timestamp($2::float8 / 1000)
          ORDER BY sc.id LIMIT $3`,
        [req.route, req.fromMs, req.limit],
      );
      for (const row of rows) {
        let verdict: PairVerdict = 'tie';
        let stableScore: number | null = null;
        let shadowScore: number | null = null;
        if (row.shadow_error && !row.stable_error) verdict = 'stable_better';
        else if (row.stable_error && !row.shadow_error) verdict = 'shadow_better';
        else if (row.stable_answer !== null && row.shadow_answer !== null) {
          const question = referenceFor(row);
          if (question) {
            stableScore = gradeAnswer(question, row.stable_answer).score;
            shadowScore = gradeAnswer(question, row.shadow_answer).score;
            verdict =
              shadowScore > stableScore
                ? 'shadow_better'
                : shadowScore < stableScore
                  ? 'stable_better'
                  : 'tie';
          } else if (req.judge && deps.chain) {
            verdict = await judgePair(
              deps.chain,
              req.judge,
              lastUserMessage(row.prompt),
              row.stable_answer,
              row.shadow_answer,
            ).catch(() => 'tie' as const);
          }
        }
        await pool.query(
          `UPDATE shadow_comparisons SET verdict = $2, stable_score = $3, shadow_score = $4, judge = $5, compared_at = now() WHERE id = $1`,
          [
            row.id,
            verdict,
            stableScore,
            shadowScore,
            stableScore !== null ? 'reference' : req.judge ? 'llm-judge' : 'errors',
          ],
        );
      }
      const counts = await pool.query<{ verdict: string | null; n: number }>(
        `SELECT verdict, count(*)::int AS n FROM shadow_comparisons
          WHERE route = $1 AND created_at >= to_timestamp($2::float8 / 1000) GROUP BY verdict`,
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
        costUsd: cost.rows[0].cost,
      };
    },
  };
}
