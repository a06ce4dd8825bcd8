import { feedbackScore } from '../heuristics';
import { defineEvaluator, fromOneToFive } from './evaluator';

/** The request's latest user feedback: thumbs up 1, down 0, a posted 1-5 score as (s-1)/4. */
export const feedback = defineEvaluator('feedback', (config, deps) => ({
  name: 'feedback',
  weight: config.weight,
  async evaluate(item) {
    const { rows } = await deps.pool.query<{ score: number | null; thumbs: string | null }>(
      'SELECT score, thumbs FROM feedback WHERE request_id = $1 ORDER BY id DESC LIMIT 1',
      [item.requestId],
    );
    const score = rows[0] ? feedbackScore(rows[0]) : null;
    return score === null ? null : { score: fromOneToFive(score) };
  },
}));
