import type { Assertion, DatasetItem } from './dataset';
import { messagesOf } from './dataset';
import { compiledRegex, compiledSchema, matchesRegex, matchesSchema } from '../scoring/checks';
import { normalizeText } from '../scoring/reference';

/** What one model answered to one item (or how it failed). */
export interface EvalAnswer {
  text: string;
  toolCalls?: readonly { name: string }[];
  /** The call failed (every target of the chain); the item fails with it. */
  error?: string;
}

/** Scores an answer 1-5 by a rubric (the LLM judge); null when its reply holds no score. */
export type JudgeFn = (rubric: string, question: string, answer: string) => Promise<number | null>;

export interface ItemVerdict {
  pass: boolean;
  /** Why it failed, one entry per failed assertion (empty when it passed). */
  failures: string[];
}

const clip = (s: string, n = 60) => (s.length > n ? `${s.slice(0, n)}…` : s);

/**
 * Checks one answer against the item's assertions (a reference alone means "contains the reference", case
 * and spacing aside). Every assertion is checked, so the report lists all that failed, not the first.
 */
export async function checkAnswer(
  item: DatasetItem,
  answer: EvalAnswer,
  judge?: JudgeFn,
): Promise<ItemVerdict> {
  if (answer.error !== undefined) return { pass: false, failures: [`no answer: ${answer.error}`] };
  const assertions: Assertion[] = [
    ...(item.assert ?? []),
    ...(item.reference && !item.assert ? [{ contains: item.reference }] : []),
  ];
  const failures: string[] = [];
  const text = answer.text;
  const question = messagesOf(item).at(-1)!.content;
  for (const a of assertions) {
    if ('contains' in a) {
      if (!normalizeText(text).includes(normalizeText(a.contains)))
        failures.push(`does not contain "${clip(a.contains)}"`);
    } else if ('notContains' in a) {
      if (normalizeText(text).includes(normalizeText(a.notContains)))
        failures.push(`contains "${clip(a.notContains)}"`);
    } else if ('regex' in a) {
      if (!matchesRegex(compiledRegex(a.regex), text)) failures.push(`does not match /${clip(a.regex)}/`);
    } else if ('jsonSchema' in a) {
      if (!matchesSchema(compiledSchema(a.jsonSchema), text.trim()))
        failures.push('is not JSON matching the schema');
    } else if ('toolCall' in a) {
      if (!answer.toolCalls?.some((c) => c.name === a.toolCall))
        failures.push(`calls no tool named ${a.toolCall}`);
    } else {
      if (!judge) failures.push('has a judge assertion but no --judge was given');
      else {
        const score = await judge(a.judge, question, text);
        if (score === null) failures.push('the judge gave no score');
        else if (score < a.min) failures.push(`judge scored ${score}/5 (needs ${a.min})`);
      }
    }
  }
  return { pass: failures.length === 0, failures };
}
