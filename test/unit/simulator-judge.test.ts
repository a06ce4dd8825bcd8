import { describe, expect, it } from 'vitest';
import { judgeReply } from '../../src/tooling/simulator/judge';
import { composeAnswer } from '../../src/tooling/simulator/answers';
import { createRandom } from '../../src/tooling/simulator/random';
import { loadQuestions } from '../../src/decision/scoring/reference-set/questions';
import { parseScore } from '../../src/decision/scoring/judge';

const random = createRandom(7);
const frame = (q: string, a: string) => `Question:\n${q}\n\nAnswer:\n${a}`;

describe('the simulated judge', () => {
  const prompt = 'How do I handle refunds for cancelled subscriptions?';
  const answer = (correct: boolean) =>
    composeAnswer({ question: undefined, prompt, correct, json: false, outputTokens: 40 }, random);

  it('grades an open prompt by whether the answer stays on its topic', () => {
    expect(parseScore(judgeReply(frame(prompt, answer(true)), true, random)!)).toBe(5);
    expect(parseScore(judgeReply(frame(prompt, answer(false)), true, random)!)).toBe(1);
  });

  it('grades a known question against its reference answer', () => {
    const q = loadQuestions().find((x) => x.kind !== 'json')!;
    expect(judgeReply(frame(q.prompt, `Answer: ${q.reference}`), true, random)).toBe('5');
    expect(judgeReply(frame(q.prompt, 'Answer: something else entirely'), true, random)).toBe('1');
  });

  it('compares two answers pairwise, and is no judge for an ordinary prompt', () => {
    const pair = `Question:\n${prompt}\n\nAnswer A:\n${answer(false)}\n\nAnswer B:\n${answer(true)}`;
    expect(judgeReply(pair, true, random)).toBe('B');
    expect(judgeReply(prompt, true, random)).toBeUndefined();
  });

  it('a careless judge (a wrong roll) gives some 1-5 grade regardless of the answer', () => {
    const grades = new Set(
      Array.from({ length: 50 }, () => judgeReply(frame(prompt, answer(true)), false, random)),
    );
    expect([...grades].every((g) => /^[1-5]$/.test(g!))).toBe(true);
    expect(grades.size).toBeGreaterThan(2);
  });
});
