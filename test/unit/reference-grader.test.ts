import { describe, expect, it } from 'vitest';
import { gradeAnswer, type GradableQuestion } from '../../src/decision/scoring/reference';
import { loadQuestions } from '../../src/decision/scoring/reference-set/questions';

const number = (reference: string): GradableQuestion => ({ kind: 'arithmetic', reference });
const conversion = (reference: string): GradableQuestion => ({ kind: 'conversion', reference });
const fact = (reference: string): GradableQuestion => ({ kind: 'fact', reference });
const extraction = (reference: object): GradableQuestion => ({
  kind: 'json',
  reference: JSON.stringify(reference),
});

describe('reference grader: single values', () => {
  it('reads the last Answer: line, with or without decoration', () => {
    expect(gradeAnswer(number('42'), 'First 40.\nThen 2 more.\nAnswer: 42')).toEqual({
      correct: true,
      score: 5,
      extracted: '42',
    });
    expect(gradeAnswer(number('42'), 'Answer: 41\nWait, recounting.\n**Final answer:** 42.').correct).toBe(
      true,
    );
    expect(gradeAnswer(number('42'), 'answer:   42  ').correct).toBe(true);
    expect(gradeAnswer(number('42'), 'Answer: 41')).toEqual({ correct: false, score: 1, extracted: '41' });
  });

  it('accepts thousands separators, currency and a trailing unit word', () => {
    expect(gradeAnswer(number('1250'), 'Answer: 1,250').correct).toBe(true);
    expect(gradeAnswer(number('1250000'), 'Answer: 1,250,000').correct).toBe(true);
    expect(gradeAnswer(number('17'), 'Answer: $17').correct).toBe(true);
    expect(gradeAnswer(number('17'), 'Answer: 17 dollars').correct).toBe(true);
    expect(gradeAnswer(number('96'), 'Answer: 96 loaves').correct).toBe(true);
    expect(gradeAnswer(number('54'), 'Answer: 54.0').correct).toBe(true);
    expect(gradeAnswer(number('12'), 'Answer: 1,2').correct).toBe(false);
    expect(gradeAnswer(number('12'), 'Answer: 12 or 13').correct).toBe(false);
  });

  it('compares numbers with a relative tolerance of 1e-6', () => {
    expect(gradeAnswer(number('1000000'), 'Answer: 1000000.5').correct).toBe(true);
    expect(gradeAnswer(number('1000000'), 'Answer: 1000002').correct).toBe(false);
    expect(gradeAnswer(number('0.1'), 'Answer: 0.10000001').correct).toBe(true);
    expect(gradeAnswer(number('0'), 'Answer: 0.0').correct).toBe(true);
    expect(gradeAnswer(number('-5'), 'Answer: −5').correct).toBe(true);
  });

  it('normalizes unit spellings and rejects a different unit', () => {
    expect(gradeAnswer(conversion('3500 m'), 'Answer: 3,500 meters').correct).toBe(true);
    expect(gradeAnswer(conversion('3500 m'), 'Answer: 3500m').correct).toBe(true);
    expect(gradeAnswer(conversion('3500 m'), 'Answer: 3500 Metres').correct).toBe(true);
    expect(gradeAnswer(conversion('3500 m'), 'Answer: 3500').correct).toBe(true);
    expect(gradeAnswer(conversion('3500 m'), 'Answer: 3500 m (3.5 km)').correct).toBe(true);
    expect(gradeAnswer(conversion('3500 m'), 'Answer: 3500 km').correct).toBe(false);
    expect(gradeAnswer(conversion('3500 m'), 'Answer: 3.5 km').correct).toBe(false);
    expect(gradeAnswer(conversion('77 °F'), 'Answer: 77 degrees Fahrenheit').correct).toBe(true);
    expect(gradeAnswer(conversion('77 °F'), 'Answer: 77°F').correct).toBe(true);
    expect(gradeAnswer(conversion('77 °F'), 'Answer: 77 °C').correct).toBe(false);
    expect(gradeAnswer(conversion('26.46 lb'), 'Answer: 26.46 pounds').correct).toBe(true);
  });

  it('compares text ignoring case, accents, articles and a closing period', () => {
    expect(gradeAnswer(fact('Brasília'), 'Answer: brasilia').correct).toBe(true);
    expect(gradeAnswer(fact('Paris'), 'Answer: PARIS.').correct).toBe(true);
    expect(gradeAnswer(fact('Paris'), 'Answer: "Paris"').correct).toBe(true);
    expect(gradeAnswer(fact('New Delhi'), 'Answer:  new   delhi').correct).toBe(true);
    expect(gradeAnswer(fact('Mars'), 'Answer: The Mars').correct).toBe(true);
    expect(gradeAnswer(fact('Au'), 'Answer: AU').correct).toBe(true);
    expect(gradeAnswer(fact('Paris'), 'Answer: Lyon').correct).toBe(false);
    // Text that merely starts with a digit is not a quantity: "4B" is not "4".
    expect(gradeAnswer(fact('4B'), 'Answer: 4').correct).toBe(false);
  });

  it('falls back to an "answer" JSON field or a short bare reply', () => {
    expect(gradeAnswer(fact('Paris'), '{"answer":"Paris","explanation":"It is."}').correct).toBe(true);
    expect(gradeAnswer(number('42'), '{"answer": 42}').correct).toBe(true);
    expect(gradeAnswer(fact('Paris'), 'Paris')).toEqual({ correct: true, score: 5, extracted: 'Paris' });
  });

  it('scores 1 with nothing extracted when there is no answer to read', () => {
    const long = 'I think about this a lot.\nThere are many considerations.\nIt depends.';
    expect(gradeAnswer(fact('Paris'), long)).toEqual({ correct: false, score: 1, extracted: null });
    expect(gradeAnswer(fact('Paris'), '')).toEqual({ correct: false, score: 1, extracted: null });
    expect(gradeAnswer(fact('Paris'), 'Answer:')).toMatchObject({ correct: false, score: 1 });
  });
});

describe('reference grader: JSON extraction', () => {
  const person = extraction({ name: 'Maria Lopez', age: 34, city: 'Lisbon' });

  it('ignores key order, whitespace, case and extra keys', () => {
    const grade = gradeAnswer(person, '{ "city": "lisbon", "age": 34, "name": "Maria  Lopez", "note": "x" }');
    expect(grade).toMatchObject({ correct: true, score: 5 });
    expect(JSON.parse(grade.extracted!)).toMatchObject({ city: 'lisbon' });
  });

  it('finds the object in a code fence or surrounding prose', () => {
    expect(
      gradeAnswer(person, 'Here it is:\n```json\n{"name":"Maria Lopez","age":34,"city":"Lisbon"}\n```')
        .correct,
    ).toBe(true);
    expect(
      gradeAnswer(person, 'Result: {"name":"Maria Lopez","age":34,"city":"Lisbon"} (done)').correct,
    ).toBe(true);
  });

  it('accepts numbers written as strings, and booleans as text', () => {
    expect(gradeAnswer(person, '{"name":"Maria Lopez","age":"34","city":"Lisbon"}').correct).toBe(true);
    const review = extraction({ product: 'desk lamp', rating: 4, recommend: true });
    expect(gradeAnswer(review, '{"product":"Desk lamp","rating":4.0,"recommend":"true"}').correct).toBe(true);
    expect(gradeAnswer(review, '{"product":"desk lamp","rating":4,"recommend":false}').correct).toBe(false);
  });

  it('gives partial credit by the share of fields right', () => {
    expect(gradeAnswer(person, '{"name":"Maria Lopez","age":35,"city":"Lisbon"}')).toMatchObject({
      correct: false,
      score: 3,
    });
    expect(gradeAnswer(person, '{"name":"Maria","age":35,"city":"Lisbon"}')).toMatchObject({
      correct: false,
      score: 2,
    });
    expect(gradeAnswer(person, '{"name":"Maria Lopez"}')).toMatchObject({ correct: false, score: 2 });
    expect(gradeAnswer(person, '{"name":"Maria","age":35,"city":"Oslo"}')).toMatchObject({
      correct: false,
      score: 1,
    });
  });

  it('scores 1 with nothing extracted for invalid or non-object JSON', () => {
    expect(gradeAnswer(person, '{"name":"Maria Lopez","age":34,')).toEqual({
      correct: false,
      score: 1,
      extracted: null,
    });
    expect(gradeAnswer(person, '[1, 2, 3]')).toEqual({ correct: false, score: 1, extracted: null });
    expect(gradeAnswer(person, 'No idea.')).toEqual({ correct: false, score: 1, extracted: null });
  });
});

describe('reference grader and the bundled question set', () => {
  const questions = loadQuestions();

  it('has at least 300 questions of all four kinds with unique ids and prompts', () => {
    expect(questions.length).toBeGreaterThanOrEqual(300);
    expect(new Set(questions.map((q) => q.kind))).toEqual(
      new Set(['arithmetic', 'conversion', 'fact', 'json']),
    );
    expect(new Set(questions.map((q) => q.id)).size).toBe(questions.length);
    expect(new Set(questions.map((q) => q.prompt)).size).toBe(questions.length);
  });

  it('grades every reference correct and every wrong answer wrong', () => {
    for (const question of questions) {
      const render = (value: string) =>
        question.kind === 'json' ? value : `Some reasoning.\nAnswer: ${value}`;
      expect(gradeAnswer(question, render(question.reference)).correct, question.id).toBe(true);
      for (const wrong of question.wrong)
        expect(gradeAnswer(question, render(wrong)).correct, question.id).toBe(false);
    }
  });
});
