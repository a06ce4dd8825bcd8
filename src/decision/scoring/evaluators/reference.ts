import { gradeAnswer } from '../reference';
import { findQuestionByPrompt, loadQuestions, type Question } from '../reference-set/questions';
import { defineEvaluator, fromOneToFive } from './evaluator';

let questionsById: Map<string, Question> | undefined;

/** The known question an answer answers: by the id the caller sent, else by the prompt's exact text. */
export function referenceQuestion(referenceId: string | null, question: string): Question | undefined {
  questionsById ??= new Map(loadQuestions().map((q) => [q.id, q]));
  return (referenceId ? questionsById.get(referenceId) : undefined) ?? findQuestionByPrompt(question);
}

/** Graded 1-5 against the bundled question set's known answer, as (g-1)/4; not applicable elsewhere. */
export const reference = defineEvaluator('reference', (config) => ({
  name: 'reference',
  weight: config.weight,
  async evaluate(item) {
    const question = referenceQuestion(item.referenceId, item.question);
    return question ? { score: fromOneToFive(gradeAnswer(question, item.answer).score) } : null;
  },
}));
