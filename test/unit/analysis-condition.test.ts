/** The success and failure conditions of metric checks: parsed without eval, evaluated on measured values. */
import { describe, expect, it } from 'vitest';
import { parseCondition } from '../../src/decision/analysis/condition';

const ARMS = ['result', 'stable', 'canary'];
const evaluate = (text: string, vars: Record<string, number | null | undefined>, allowed = ARMS) =>
  parseCondition(text, allowed).evaluate(vars);
const refusal = (text: string, allowed = ARMS) => {
  try {
    parseCondition(text, allowed);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`expected ${text} to be refused`);
};

describe('metric check conditions', () => {
  it.each([
    ['result < 0.05', { result: 0.01 }, true],
    ['result < 0.05', { result: 0.05 }, false],
    ['result <= 0.05', { result: 0.05 }, true],
    ['result > 0.95', { result: 0.96 }, true],
    ['result >= 0.95', { result: 0.94 }, false],
    ['result == 0', { result: 0 }, true],
    ['result != 0', { result: 0 }, false],
    ['canary <= stable * 1.1', { canary: 1.05, stable: 1 }, true],
    ['canary <= stable * 1.1', { canary: 1.2, stable: 1 }, false],
    ['canary - stable < 0.02', { canary: 0.03, stable: 0.02 }, true],
    ['abs(canary - stable) / stable < 0.1', { canary: 0.8, stable: 1 }, false],
    ['abs(canary - stable) / stable < 0.1', { canary: 1.05, stable: 1 }, true],
    ['max(canary, stable) < 2 and min(canary, stable) > 0', { canary: 1, stable: 1.5 }, true],
    ['result < 0.05 || result > 10', { result: 11 }, true],
    ['result > 0.05 && result < 10', { result: 11 }, false],
    ['not (result > 0.05)', { result: 0.01 }, true],
    ['!(result > 0.05) or result == 1', { result: 1 }, true],
    ['-result < 0', { result: 1 }, true],
    ['result < 1e-3', { result: 0.0001 }, true],
    ['result < .5', { result: 0.4 }, true],
    ['(result + 1) * 2 >= 4', { result: 1 }, true],
    ['result / 2 / 2 == 1', { result: 4 }, true],
    ['result - 1 - 1 == 0', { result: 2 }, true],
    ['2 * 3 + 1 == 7 and result > 0', { result: 1 }, true],
  ] as const)('%s with %j is %s', (text, vars, expected) => {
    expect(evaluate(text, vars)).toBe(expected);
  });

  it('a missing or non-finite value makes it unanswerable (inconclusive), never true', () => {
    expect(evaluate('result < 0.05', { result: null })).toBeNull();
    expect(evaluate('result < 0.05', {})).toBeNull();
    expect(evaluate('result < 0.05', { result: NaN })).toBeNull();
    expect(evaluate('result < 0.05', { result: Infinity })).toBeNull();
    expect(evaluate('canary <= stable * 1.1', { canary: 1, stable: null })).toBeNull();
    // Division by zero is not a number either.
    expect(evaluate('canary / stable < 2', { canary: 1, stable: 0 })).toBeNull();
    // `or` is true when one side is; `and` false when one side is; otherwise unanswerable stays so.
    expect(evaluate('result < 1 or stable > 0', { result: 0.5, stable: null })).toBe(true);
    expect(evaluate('result < 1 and stable > 0', { result: 5, stable: null })).toBe(false);
    expect(evaluate('result < 1 and stable > 0', { result: 0.5, stable: null })).toBeNull();
    expect(evaluate('not (stable > 0)', { stable: null })).toBeNull();
  });

  it('names the variables it reads', () => {
    expect([...parseCondition('canary <= stable * 1.1', ARMS).vars].sort()).toEqual(['canary', 'stable']);
  });

  it.each([
    ['', 'empty condition'],
    ['result', 'a condition compares a value with a bound, e.g. result < 0.05'],
    ['result + 1', 'a condition compares a value with a bound, e.g. result < 0.05'],
    ['1 < 2', 'a condition reads a measured value (result, stable, canary)'],
    ['true', "'true' is not a condition: compare a value (e.g. result < 0.05)"],
    ['0 < result < 1', "comparisons do not chain: use 'and' ('<' at 12)"],
    ['result <', 'unexpected at the end'],
    ['result < 0.05)', "unexpected ')' at 14"],
    ['(result < 0.05', "expected ')', found at the end"],
    ['result < 0.05 and 3', "'and' needs a comparison, not a number"],
    ['(result < 1) + 1 > 0', "'+' needs a number, not a comparison"],
    ['result ^ 2 > 1', "unexpected '^' at 8"],
    ['process.exit() < 1', "unexpected '.' at 8"],
    ['__proto__ < 1', "unknown name '__proto__' at 1 (known: result, stable, canary, abs(), min(), max())"],
    [
      'toString(result) < 1',
      "unknown name 'toString' at 1 (known: result, stable, canary, abs(), min(), max())",
    ],
    [
      'constructor < 1',
      "unknown name 'constructor' at 1 (known: result, stable, canary, abs(), min(), max())",
    ],
    ["result < '1'", "unexpected ''' at 10"],
    ['result = 1', "unexpected '=' at 8"],
    ['abs(result, 1) < 1', 'abs() takes 1 argument(s)'],
    ['min(result) < 1', 'min() takes 2 to 8 argument(s)'],
    ['x'.repeat(501), 'at most 500 characters'],
  ])('refuses %j: %s', (text, message) => {
    expect(refusal(text)).toBe(message);
  });

  it('a check that is not per arm knows only `result`', () => {
    expect(refusal('canary < 1', ['result'])).toBe(
      "unknown name 'canary' at 1 (known: result, abs(), min(), max())",
    );
  });
});
