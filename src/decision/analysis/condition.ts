/**
 * The success and failure conditions of a metric check (`result < 0.05`, `canary <= stable * 1.1`), parsed
 * by a small recursive-descent parser into a closure: no `eval`, no `Function`, nothing but numbers, the
 * named variables, arithmetic, comparisons, `and`/`or`/`not` and `abs`/`min`/`max`. Pure code: the
 * workflow evaluates conditions on the values its activities measured.
 *
 * A condition must compare (its direction is then written out, as a trigger's is), and a value it needs
 * that is missing or not a finite number makes it unanswerable (null): inconclusive, never success.
 */

export type ConditionVars = Readonly<Record<string, number | null | undefined>>;

export interface Condition {
  /** As written. */
  readonly text: string;
  /** The variables it reads. */
  readonly vars: readonly string[];
  /** true / false, or null when a value it needs is missing or an arithmetic result is not finite. */
  evaluate(vars: ConditionVars): boolean | null;
}

export class ConditionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConditionError';
  }
}

type Token =
  | { t: 'num'; v: number; at: number }
  | { t: 'id'; v: string; at: number }
  | { t: 'op'; v: string; at: number }
  | { t: 'end'; at: number };

const OPS = ['<=', '>=', '==', '!=', '&&', '||', '<', '>', '!', '+', '-', '*', '/', '(', ')', ','];
const FUNCTIONS: Record<string, { arity: [number, number]; fn: (...a: number[]) => number }> = {
  abs: { arity: [1, 1], fn: Math.abs },
  min: { arity: [2, 8], fn: Math.min },
  max: { arity: [2, 8], fn: Math.max },
};
const WORD_OPS: Record<string, string> = { and: '&&', or: '||', not: '!' };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const num = /^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/.exec(text.slice(i));
    if (num) {
      tokens.push({ t: 'num', v: Number(num[0]), at: i });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (id) {
      const word = id[0];
      const op = Object.hasOwn(WORD_OPS, word) ? WORD_OPS[word] : undefined;
      tokens.push(op ? { t: 'op', v: op, at: i } : { t: 'id', v: word, at: i });
      i += word.length;
      continue;
    }
    const op = OPS.find((o) => text.startsWith(o, i));
    if (!op) throw new ConditionError(`unexpected '${c}' at ${i + 1}`);
    tokens.push({ t: 'op', v: op, at: i });
    i += op.length;
  }
  tokens.push({ t: 'end', at: text.length });
  return tokens;
}

/** A node evaluates to a number (NaN when unanswerable) or a boolean (null when unanswerable). */
type Num = { kind: 'num'; run: (v: ConditionVars) => number };
type Bool = { kind: 'bool'; run: (v: ConditionVars) => boolean | null; compares: boolean };
type Node = Num | Bool;

const COMPARE: Record<string, (a: number, b: number) => boolean> = {
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
};
const ARITH: Record<string, (a: number, b: number) => number> = {
  '+': (a, b) => a + b,
  '-': (a, b) => a - b,
  '*': (a, b) => a * b,
  '/': (a, b) => a / b,
};

/**
 * Parses `text` with the variables `allowed` (e.g. `['result']`, or `['result', 'stable', 'canary']` for a
 * per-arm check). Throws ConditionError naming the position and what was wrong.
 */
export function parseCondition(text: string, allowed: readonly string[]): Condition {
  if (text.length > 500) throw new ConditionError('at most 500 characters');
  const tokens = tokenize(text);
  const used = new Set<string>();
  let pos = 0;
  const peek = () => tokens[pos];
  const isOp = (v: string) => {
    const t = peek();
    return t.t === 'op' && t.v === v;
  };
  const where = (t: Token) => (t.t === 'end' ? 'at the end' : `'${String(t.v)}' at ${t.at + 1}`);
  const expect = (v: string) => {
    if (!isOp(v)) throw new ConditionError(`expected '${v}', found ${where(peek())}`);
    pos++;
  };
  const asNum = (n: Node, op: string): Num => {
    if (n.kind !== 'num') throw new ConditionError(`'${op}' needs a number, not a comparison`);
    return n;
  };
  const asBool = (n: Node, op: string): Bool => {
    if (n.kind !== 'bool') throw new ConditionError(`'${op}' needs a comparison, not a number`);
    return n;
  };

  function orExpr(): Node {
    let left = andExpr();
    while (isOp('||')) {
      pos++;
      const a = asBool(left, 'or');
      const b = asBool(andExpr(), 'or');
      left = {
        kind: 'bool',
        compares: a.compares || b.compares,
        run: (v) => {
          const x = a.run(v);
          const y = b.run(v);
          if (x === true || y === true) return true;
          return x === null || y === null ? null : false;
        },
      };
    }
    return left;
  }
  function andExpr(): Node {
    let left = notExpr();
    while (isOp('&&')) {
      pos++;
      const a = asBool(left, 'and');
      const b = asBool(notExpr(), 'and');
      left = {
        kind: 'bool',
        compares: a.compares || b.compares,
        run: (v) => {
          const x = a.run(v);
          const y = b.run(v);
          if (x === false || y === false) return false;
          return x === null || y === null ? null : true;
        },
      };
    }
    return left;
  }
  function notExpr(): Node {
    if (isOp('!')) {
      pos++;
      const a = asBool(notExpr(), 'not');
      return {
        kind: 'bool',
        compares: a.compares,
        run: (v) => {
          const x = a.run(v);
          return x === null ? null : !x;
        },
      };
    }
    return comparison();
  }
  function comparison(): Node {
    const left = additive();
    const t = peek();
    if (t.t === 'op' && COMPARE[t.v]) {
      pos++;
      const a = asNum(left, t.v);
      const b = asNum(additive(), t.v);
      const cmp = COMPARE[t.v];
      const node: Bool = {
        kind: 'bool',
        compares: true,
        run: (v) => {
          const x = a.run(v);
          const y = b.run(v);
          return Number.isFinite(x) && Number.isFinite(y) ? cmp(x, y) : null;
        },
      };
      const next = peek();
      if (next.t === 'op' && COMPARE[next.v])
        throw new ConditionError(`comparisons do not chain: use 'and' (${where(next)})`);
      return node;
    }
    return left;
  }
  function additive(): Node {
    let left = multiplicative();
    for (let t = peek(); t.t === 'op' && (t.v === '+' || t.v === '-'); t = peek()) {
      pos++;
      left = arith(t.v, left, multiplicative());
    }
    return left;
  }
  function multiplicative(): Node {
    let left = unary();
    for (let t = peek(); t.t === 'op' && (t.v === '*' || t.v === '/'); t = peek()) {
      pos++;
      left = arith(t.v, left, unary());
    }
    return left;
  }
  function arith(op: string, l: Node, r: Node): Num {
    const a = asNum(l, op);
    const b = asNum(r, op);
    const f = ARITH[op];
    return { kind: 'num', run: (v) => f(a.run(v), b.run(v)) };
  }
  function unary(): Node {
    if (isOp('-')) {
      pos++;
      const a = asNum(unary(), '-');
      return { kind: 'num', run: (v) => -a.run(v) };
    }
    return primary();
  }
  function primary(): Node {
    const t = peek();
    if (t.t === 'num') {
      pos++;
      return { kind: 'num', run: () => t.v };
    }
    if (t.t === 'op' && t.v === '(') {
      pos++;
      const inner = orExpr();
      expect(')');
      return inner;
    }
    if (t.t === 'id') {
      pos++;
      if (t.v === 'true' || t.v === 'false')
        throw new ConditionError(`'${t.v}' is not a condition: compare a value (e.g. result < 0.05)`);
      // Own keys only: `constructor` or `__proto__` must not reach Object.prototype.
      const fn = Object.hasOwn(FUNCTIONS, t.v) ? FUNCTIONS[t.v] : undefined;
      if (fn) {
        expect('(');
        const args: Num[] = [asNum(additive(), t.v)];
        while (isOp(',')) {
          pos++;
          args.push(asNum(additive(), t.v));
        }
        expect(')');
        const [lo, hi] = fn.arity;
        if (args.length < lo || args.length > hi)
          throw new ConditionError(`${t.v}() takes ${lo === hi ? lo : `${lo} to ${hi}`} argument(s)`);
        return { kind: 'num', run: (v) => fn.fn(...args.map((a) => a.run(v))) };
      }
      if (!allowed.includes(t.v))
        throw new ConditionError(
          `unknown name '${t.v}' at ${t.at + 1} (known: ${[...allowed, ...Object.keys(FUNCTIONS).map((f) => `${f}()`)].join(', ')})`,
        );
      used.add(t.v);
      const name = t.v;
      return {
        kind: 'num',
        run: (v) => {
          const x = v[name];
          return typeof x === 'number' && Number.isFinite(x) ? x : NaN;
        },
      };
    }
    throw new ConditionError(`unexpected ${where(t)}`);
  }

  if (text.trim() === '') throw new ConditionError('empty condition');
  const root = orExpr();
  if (peek().t !== 'end') throw new ConditionError(`unexpected ${where(peek())}`);
  if (root.kind !== 'bool' || !root.compares)
    throw new ConditionError('a condition compares a value with a bound, e.g. result < 0.05');
  if (used.size === 0) throw new ConditionError(`a condition reads a measured value (${allowed.join(', ')})`);
  return { text, vars: [...used], evaluate: (vars) => root.run(vars) };
}
