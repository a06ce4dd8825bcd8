import type { Question, QuestionKind } from '../../decision/scoring/reference-set/questions';
import type { Random } from './random';
import { countTokens } from './tokens';
import { topicWords } from './topic';

/**
 * Writes what a simulated model says. A known question gets its reference answer or one of its
 * plausible wrong answers, in the shape a real model would use: a short sentence, some explanation
 * (padding the reply to about the requested length), and a final `Answer: <value>` line. Extraction
 * tasks get the bare JSON object; other replies become `{"answer", "explanation"}` when the request
 * asked for JSON.
 */

export interface AnswerSpec {
  /** The recognized question, or undefined for a prompt the simulator does not know. */
  question: Question | undefined;
  /** The prompt's last user text: an open prompt is answered on (or, when not `correct`, off) its topic. */
  prompt?: string;
  /** Whether to give the reference answer (decided by the request's dice). */
  correct: boolean;
  /** The request asked for a JSON object (so the reply must parse as one). */
  json: boolean;
  /** Approximate length of the reply. */
  outputTokens: number;
}

export function composeAnswer(spec: AnswerSpec, random: Random): string {
  const { question } = spec;
  if (!question) return genericReply(spec, random);
  const value =
    spec.correct || question.wrong.length === 0 ? question.reference : random.pick(question.wrong);
  // Extraction prompts ask for "the JSON object only", so the object is the whole reply, unpadded.
  if (question.kind === 'json') return value;
  const lead = random.pick(LEADS[question.kind]).replace('{value}', value);
  if (spec.json) {
    const explanation = explain(lead, EXPLANATIONS[question.kind], spec.outputTokens - 8, random);
    return JSON.stringify({ answer: value, explanation });
  }
  const answerLine = `\nAnswer: ${value}`;
  return (
    explain(lead, EXPLANATIONS[question.kind], spec.outputTokens - countTokens(answerLine), random) +
    answerLine
  );
}

function genericReply(spec: AnswerSpec, random: Random): string {
  const topic = spec.prompt ? topicWords(spec.prompt) : [];
  const lead =
    topic.length === 0
      ? random.pick(GENERIC_LEADS)
      : spec.correct
        ? `On ${topic.join(', ')}: here is what matters.`
        : random.pick(OFF_TOPIC_LEADS);
  if (spec.json)
    return JSON.stringify({ response: explain(lead, GENERIC_EXPLANATIONS, spec.outputTokens - 6, random) });
  return explain(lead, GENERIC_EXPLANATIONS, spec.outputTokens, random);
}

/** The lead sentence followed by explanation sentences until the text reaches about `tokens`. */
function explain(lead: string, sentences: readonly string[], tokens: number, random: Random): string {
  const parts = [lead];
  let used = countTokens(lead);
  let pool: string[] = [];
  while (used < tokens) {
    // Draw without repetition until the pool runs dry, so short replies never repeat themselves.
    if (pool.length === 0) pool = random.shuffle(sentences);
    const sentence = pool.pop()!;
    parts.push(sentence);
    used += countTokens(sentence) + 1;
  }
  return parts.join(' ');
}

const LEADS: Record<Exclude<QuestionKind, 'json'>, readonly string[]> = {
  arithmetic: [
    'Working through the quantities step by step gives {value}.',
    'Combining the numbers in the problem, the result is {value}.',
    'Setting up the calculation carefully, I get {value}.',
  ],
  conversion: [
    'Applying the conversion factor gives {value}.',
    'Converting the quantity, the result is {value}.',
    'Multiplying by the appropriate factor gives {value}.',
  ],
  fact: ['The answer is {value}.', 'That would be {value}.', 'It is {value}.'],
};

const EXPLANATIONS: Record<Exclude<QuestionKind, 'json'>, readonly string[]> = {
  arithmetic: [
    'First I identified each quantity mentioned in the problem.',
    'Then I worked out which operations connect them.',
    'I multiplied the repeated amounts before adding or subtracting the rest.',
    'Keeping track of the units avoids mixing up the totals.',
    'A quick estimate confirms that the result is in the right range.',
    'Checking the calculation a second time gives the same value.',
  ],
  conversion: [
    'The two units are related by a fixed factor.',
    'Going from the larger unit to the smaller one means multiplying.',
    'Going from the smaller unit to the larger one means dividing.',
    'Writing the units next to the numbers shows that they cancel correctly.',
    'Rounding is applied only at the very end to keep the result precise.',
    'A rough mental estimate agrees with the computed value.',
  ],
  fact: [
    'This is well established and does not change over time.',
    'It appears in standard reference works.',
    'It is commonly taught in school.',
    'There is little ambiguity about it.',
    'Encyclopedias and textbooks agree on this point.',
  ],
};

const GENERIC_LEADS = [
  'Here is a short answer to your question.',
  'Thanks for the question; here is what I can say.',
  'Let me address that briefly.',
];

/** A model that got an open prompt wrong: fluent, and about something else. */
const OFF_TOPIC_LEADS = [
  'I am not sure what you mean; here is something general instead.',
  'That is an interesting point in general.',
  'Let me tell you about something related.',
];

const GENERIC_EXPLANATIONS = [
  'The main consideration is the context in which the question arises.',
  'There are a few factors worth weighing against each other.',
  'In most practical situations the simplest approach works well.',
  'It helps to start from a concrete example and generalize from there.',
  'Trade-offs depend on the constraints you are working under.',
  'If more detail would help, I can expand on any of these points.',
];
