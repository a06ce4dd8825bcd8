import { findQuestionByPrompt } from '../../decision/scoring/reference-set/questions';
import type { Random } from './random';
import { topicCoverage } from './topic';

/**
 * The simulator acting as an LLM judge. A judge request carries the graded question and answer in the
 * shape every judge prompt of model-rollout uses (`Question:` … `Answer:`, or `Answer A:`/`Answer B:` for
 * a pairwise comparison); the rubric around it may say anything. The simulated judge grades what it reads:
 * a known question against its reference answer, an open prompt by whether the answer stays on its topic.
 * Its own accuracy is the model's `accuracy`: a wrong roll gives a random grade, as a careless judge would.
 */

const SINGLE = /Question:\n([\s\S]*?)\n\nAnswer:\n([\s\S]*)$/;
const PAIR = /Question:\n([\s\S]*?)\n\nAnswer A:\n([\s\S]*?)\n\nAnswer B:\n([\s\S]*)$/;

/** The judge's reply, or undefined when the request is not a judge request. */
export function judgeReply(userText: string, careful: boolean, random: Random): string | undefined {
  const pair = PAIR.exec(userText);
  if (pair) {
    const a = careful ? grade(pair[1], pair[2]) : random.int(1, 5);
    const b = careful ? grade(pair[1], pair[3]) : random.int(1, 5);
    return a > b ? 'A' : b > a ? 'B' : 'TIE';
  }
  const single = SINGLE.exec(userText);
  if (!single) return undefined;
  return String(careful ? grade(single[1], single[2]) : random.int(1, 5));
}

function grade(question: string, answer: string): number {
  const known = findQuestionByPrompt(question.trim());
  if (known) return answer.includes(known.reference) ? 5 : 1;
  const coverage = topicCoverage(question, answer);
  return coverage >= 0.67 ? 5 : coverage > 0 ? 3 : 1;
}
