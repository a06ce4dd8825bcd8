import { describe, expect, it } from 'vitest';
import { combineOutcomes, type EvaluatorOutcome } from '../../src/decision/scoring/combine';
import { allocateBatch } from '../../src/decision/scoring/sampling';

const score = (name: string, s: number, weight = 1, costUsd = 0): EvaluatorOutcome => ({
  name,
  weight,
  score: s,
  costUsd,
});
const na = (name: string): EvaluatorOutcome => ({ name, weight: 1, notApplicable: true });
const fail = (name: string, error: string, costUsd = 0): EvaluatorOutcome => ({
  name,
  weight: 1,
  error,
  costUsd,
});

describe('combineOutcomes', () => {
  it('weighted: the weighted mean of those that applied, named by source', () => {
    expect(
      combineOutcomes([score('judge', 0.75, 3), score('checks', 0, 1), na('feedback')], 'weighted'),
    ).toEqual({
      kind: 'scored',
      score: (0.75 * 3 + 0) / 4,
      source: 'judge+checks',
      costUsd: 0,
    });
  });

  it('weighted: one failure fails the answer (no mean of the rest), with every reason and the cost', () => {
    expect(combineOutcomes([score('checks', 1), fail('judge', 'timeout', 0.01)], 'weighted')).toEqual({
      kind: 'failed',
      error: 'judge: timeout',
      costUsd: 0.01,
    });
    expect(combineOutcomes([fail('judge', 'timeout'), fail('http:x', 'HTTP 500')], 'weighted')).toMatchObject(
      {
        error: 'judge: timeout; http:x: HTTP 500',
      },
    );
  });

  it('weighted and first: nothing applied is "not applicable", not a score', () => {
    expect(combineOutcomes([na('feedback')], 'weighted')).toEqual({ kind: 'not-applicable', costUsd: 0 });
    expect(combineOutcomes([na('reference'), na('feedback')], 'first')).toEqual({
      kind: 'not-applicable',
      costUsd: 0,
    });
  });

  it('first: the first that applies decides; its failure is never replaced by a later evaluator', () => {
    expect(
      combineOutcomes([na('reference'), score('feedback', 1), score('judge', 0)], 'first'),
    ).toMatchObject({
      score: 1,
      source: 'feedback',
    });
    expect(
      combineOutcomes([na('reference'), fail('judge', 'timeout'), score('heuristic', 0.75)], 'first'),
    ).toEqual({
      kind: 'failed',
      error: 'judge: timeout',
      costUsd: 0,
    });
  });

  it('clamps scores into [0, 1]', () => {
    expect(combineOutcomes([score('http:a', 9)], 'weighted')).toMatchObject({ score: 1 });
    expect(combineOutcomes([score('http:a', -2)], 'first')).toMatchObject({ score: 0 });
  });
});

describe('allocateBatch', () => {
  it('serves the candidate first, keeps a quarter for stable, and matches stable to the candidate beyond it', () => {
    expect(allocateBatch(200, 1000, 1000)).toEqual({ candidate: 150, stable: 50 });
    expect(allocateBatch(200, 30, 1000)).toEqual({ candidate: 30, stable: 50 });
    expect(allocateBatch(200, 80, 1000)).toEqual({ candidate: 80, stable: 80 });
    expect(allocateBatch(200, 0, 1000)).toEqual({ candidate: 0, stable: 50 });
  });

  it('gives the candidate the stable reserve when stable has too few, and never more than exists', () => {
    expect(allocateBatch(200, 1000, 10)).toEqual({ candidate: 190, stable: 10 });
    expect(allocateBatch(200, 5, 3)).toEqual({ candidate: 5, stable: 3 });
    expect(allocateBatch(0, 5, 3)).toEqual({ candidate: 0, stable: 0 });
  });
});
