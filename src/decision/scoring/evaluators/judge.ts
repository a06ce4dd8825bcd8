import { judgeScore } from '../judge';
import { defineEvaluator, EvaluatorError, fromOneToFive } from './evaluator';

/** An LLM judge's 1-5 grade of the answer, as (g-1)/4; its cost counts against the budget. */
export const judge = defineEvaluator('judge', (config, deps) => ({
  name: 'judge',
  weight: config.weight,
  async evaluate(item, signal) {
    if (!deps.chain) throw new EvaluatorError('no judge provider configured on the worker');
    const judged = await judgeScore(deps.chain, config.target, item.question, item.answer, {
      rubric: config.rubric,
      signal,
      timeoutMs: deps.judgeTimeoutMs,
    });
    if (judged.score === null) throw new EvaluatorError('judge reply had no 1-5 score');
    return { score: fromOneToFive(judged.score), costUsd: judged.costUsd };
  },
}));
