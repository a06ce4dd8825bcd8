import { describe, expect, it } from 'vitest';
import { XMLParser } from 'fast-xml-parser';
import { DatasetError, parseDataset } from '../../src/decision/eval/dataset';
import { checkAnswer } from '../../src/decision/eval/assertions';
import { compareArms } from '../../src/decision/eval/compare';
import { junitReport } from '../../src/decision/eval/junit';

const line = (o: unknown) => JSON.stringify(o);

describe('eval datasets', () => {
  it('reads prompts and messages, numbers unnamed items by line, skips blank and // lines', () => {
    const items = parseDataset(
      [
        line({ id: 'a', prompt: 'What is 2+2?', reference: '4' }),
        '',
        '// a comment',
        line({ messages: [{ role: 'user', content: 'Hi' }], assert: [{ contains: 'hello' }] }),
      ].join('\n'),
    );
    expect(items.map((i) => [i.id, i.line])).toEqual([
      ['a', 1],
      ['line-4', 4],
    ]);
  });

  it('reports every bad line with its field and reason, before any call', () => {
    const text = [
      line({ prompt: 'x' }),
      '{not json',
      line({ prompt: 'x', messages: [{ role: 'user', content: 'y' }], reference: 'z' }),
      line({ prompt: 'x', assert: [{ regex: '(a)\\1' }] }),
      line({ prompt: 'x', assert: [{ judge: 'rubric', min: 7 }] }),
      line({ id: 'dup', prompt: 'x', reference: 'y' }),
      line({ id: 'dup', prompt: 'x', reference: 'y' }),
      line({ prompt: 'x', reference: 'y', extra: 1 }),
    ].join('\n');
    let error: DatasetError | undefined;
    try {
      parseDataset(text, 'set.jsonl');
    } catch (err) {
      error = err as DatasetError;
    }
    expect(error).toBeInstanceOf(DatasetError);
    const p = error!.problems;
    expect(p[0]).toBe('line 1: give a reference or an assert list (what passes)');
    expect(p[1]).toMatch(/^line 2: not JSON/);
    expect(p[2]).toBe('line 3: give exactly one of prompt or messages');
    expect(p[3]).toMatch(/^line 4: assert\.0\.regex: regex needs a backtracking engine/);
    expect(p.some((x) => /^line 5: assert\.0\.min: /.test(x))).toBe(true);
    expect(p).toContain('line 7: id "dup" is used twice');
    expect(p.some((x) => /^line 8: .*extra/.test(x))).toBe(true);
    expect(error!.message.startsWith('set.jsonl: line 1: ')).toBe(true);
    expect(() => parseDataset('\n\n')).toThrow('no items');
  });
});

describe('eval assertions', () => {
  const item = (o: Record<string, unknown>) => parseDataset(line({ prompt: 'Q?', ...o }))[0];

  it('a reference alone means the answer contains it, case and spacing aside', async () => {
    expect(await checkAnswer(item({ reference: 'Mexico City' }), { text: 'It is  mexico city.' })).toEqual({
      pass: true,
      failures: [],
    });
    expect((await checkAnswer(item({ reference: 'Oslo' }), { text: 'Stockholm' })).failures).toEqual([
      'does not contain "Oslo"',
    ]);
  });

  it('lists every failed assertion, not only the first', async () => {
    const v = await checkAnswer(
      item({
        assert: [
          { contains: 'refund' },
          { notContains: 'sorry' },
          { regex: '^\\{' },
          { jsonSchema: { type: 'object', required: ['a'] } },
          { toolCall: 'lookup_order' },
        ],
      }),
      { text: 'sorry, no refund', toolCalls: [{ name: 'other' }] },
    );
    expect(v.pass).toBe(false);
    expect(v.failures).toEqual([
      'contains "sorry"',
      'does not match /^\\{/',
      'is not JSON matching the schema',
      'calls no tool named lookup_order',
    ]);
    const ok = await checkAnswer(
      item({ assert: [{ jsonSchema: { type: 'object', required: ['a'] } }, { toolCall: 'lookup_order' }] }),
      { text: ' {"a": 1} ', toolCalls: [{ name: 'lookup_order' }] },
    );
    expect(ok).toEqual({ pass: true, failures: [] });
  });

  it('judge assertions use the judge, and fail without one; a failed call fails the item', async () => {
    const judged = item({ assert: [{ judge: 'Is it polite?', min: 4 }] });
    expect((await checkAnswer(judged, { text: 'a' }, async () => 3)).failures).toEqual([
      'judge scored 3/5 (needs 4)',
    ]);
    expect((await checkAnswer(judged, { text: 'a' }, async () => 5)).pass).toBe(true);
    expect((await checkAnswer(judged, { text: 'a' }, async () => null)).failures).toEqual([
      'the judge gave no score',
    ]);
    expect((await checkAnswer(judged, { text: 'a' })).failures).toEqual([
      'has a judge assertion but no --judge was given',
    ]);
    expect((await checkAnswer(judged, { text: '', error: 'HTTP 500' })).failures).toEqual([
      'no answer: HTTP 500',
    ]);
  });
});

describe('compareArms', () => {
  const outcomes = (both: number, gained: number, lost: number, neither: number) => [
    ...Array.from({ length: both }, () => ({ candidate: true, stable: true })),
    ...Array.from({ length: gained }, () => ({ candidate: true, stable: false })),
    ...Array.from({ length: lost }, () => ({ candidate: false, stable: true })),
    ...Array.from({ length: neither }, () => ({ candidate: false, stable: false })),
  ];

  it('passes an equal candidate on a dataset large enough for the margin, and not on a tiny one', () => {
    expect(compareArms(outcomes(55, 0, 0, 5), { margin: 0.05 }).pass).toBe(true);
    // Ten agreeing items cannot show a 5-point margin: the bound stays honest.
    const tiny = compareArms(outcomes(10, 0, 0, 0), { margin: 0.05 });
    expect(tiny.pass).toBe(false);
    expect(tiny.lowerBound).toBeLessThan(-0.05);
    expect(compareArms(outcomes(10, 0, 0, 0), { margin: 0.2 }).pass).toBe(true);
  });

  it('fails a candidate that loses items stable passes', () => {
    const c = compareArms(outcomes(40, 1, 9, 10), { margin: 0.05 });
    expect(c).toMatchObject({
      items: 60,
      candidatePassed: 41,
      stablePassed: 49,
      gained: 1,
      lost: 9,
      pass: false,
    });
    expect(c.summary).toMatch(
      /^candidate passed 41\/60 \(68\.3%\), stable 49\/60 \(81\.7%\); 1 gained, 9 lost; 95% lower bound of the difference -\d+\.\d% < −5\.0% → candidate may be worse/,
    );
  });

  it('is monotone: more lost items never raise the bound; more gained never lower it', () => {
    for (let lost = 0; lost < 10; lost++) {
      const a = compareArms(outcomes(50, 2, lost, 0), { margin: 0.05 }).lowerBound;
      const b = compareArms(outcomes(50, 2, lost + 1, 0), { margin: 0.05 }).lowerBound;
      expect(b).toBeLessThan(a);
      const c = compareArms(outcomes(50, 3, lost, 0), { margin: 0.05 }).lowerBound;
      expect(c).toBeGreaterThan(a);
    }
  });

  it('a stricter confidence lowers the bound; an unknown one is refused; no items never pass', () => {
    const o = outcomes(50, 2, 3, 5);
    expect(compareArms(o, { margin: 0.05, confidence: 0.99 }).lowerBound).toBeLessThan(
      compareArms(o, { margin: 0.05, confidence: 0.9 }).lowerBound,
    );
    expect(() => compareArms(o, { margin: 0.05, confidence: 0.42 })).toThrow(/confidence must be one of/);
    expect(compareArms([], { margin: 1 }).pass).toBe(false);
  });
});

describe('junitReport', () => {
  it('is XML a CI system parses: a case per item and arm, the gate as its own case, text escaped', () => {
    const comparison = compareArms(
      [
        { candidate: false, stable: true },
        { candidate: true, stable: true },
      ],
      { margin: 0.05 },
    );
    const xml = junitReport(
      'model-rollout eval',
      [
        {
          item: 'a<1>',
          arm: 'candidate',
          target: 'openai:x',
          pass: false,
          failures: ['does not contain "&"\u0001'],
          seconds: 1.5,
        },
        { item: 'a<1>', arm: 'stable', target: 'anthropic:y', pass: true, failures: [], seconds: 1 },
        { item: 'b', arm: 'candidate', target: 'openai:x', pass: true, failures: [], seconds: 1 },
        { item: 'b', arm: 'stable', target: 'anthropic:y', pass: true, failures: [], seconds: 1 },
      ],
      comparison,
    );
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(xml);
    expect(doc.testsuites).toMatchObject({ tests: '5', failures: '2' });
    const [candidate, stable, gate] = doc.testsuites.testsuite;
    expect(candidate).toMatchObject({
      name: 'model-rollout eval candidate (openai:x)',
      tests: '2',
      failures: '1',
    });
    expect(candidate.testcase[0].name).toBe('a<1>');
    expect(candidate.testcase[0].failure.message).toBe('does not contain "&"\ufffd');
    expect(stable.failures).toBe('0');
    expect(gate.testcase.name).toBe('comparison');
    expect(gate.testcase.failure.message).toBe(comparison.summary);
  });
});
