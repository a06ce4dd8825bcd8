import { parser } from '@prometheus-io/lezer-promql';

type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];
/**
 * What a PromQL query names, read with Prometheus's own grammar (the one its UI uses): a syntax error, each
 * selector's metric and label matchers, and each aggregation's `by (...)` labels with the metrics below it.
 */
export interface Matcher {
  label: string;
  op: string;
  value: string;
}
export interface Selector {
  metric: string;
  matchers: Matcher[];
}
export interface Grouping {
  labels: string[];
  metrics: string[];
}
export interface QueryNames {
  errors: string[];
  selectors: Selector[];
  groupings: Grouping[];
}

/** Grafana's interval variables, as Grafana substitutes them before the query reaches Prometheus. */
export function expandGrafanaIntervals(expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)\b/g, '5m');
}

const unquote = (literal: string) =>
  JSON.parse(literal.startsWith("'") ? `"${literal.slice(1, -1)}"` : literal);

export function queryNames(query: string): QueryNames {
  const tree = parser.parse(query);
  const errors: string[] = [];
  const selectors: Selector[] = [];
  const groupings: Grouping[] = [];
  const text = (node: SyntaxNode) => query.slice(node.from, node.to);
  const selectorOf = (node: SyntaxNode): Selector => {
    const metric = node.getChild('Identifier');
    const matchers: Matcher[] = [];
    const list = node.getChild('LabelMatchers');
    for (let m = list?.firstChild; m; m = m.nextSibling) {
      const label = m.getChild('LabelName');
      const op = m.getChild('MatchOp');
      const value = m.getChild('StringLiteral');
      if (label && op && value)
        matchers.push({ label: text(label), op: text(op), value: unquote(text(value)) });
    }
    return { metric: metric ? text(metric) : '', matchers };
  };
  tree.iterate({
    enter(ref) {
      if (ref.type.isError)
        errors.push(`syntax error at ${ref.from}: "${query.slice(ref.from, ref.from + 20)}"`);
      if (ref.name === 'VectorSelector') selectors.push(selectorOf(ref.node));
      if (ref.name === 'AggregateExpr') {
        const modifier = ref.node.getChild('AggregateModifier');
        const labels = modifier?.getChild('GroupingLabels')?.getChildren('LabelName').map(text) ?? [];
        const metrics: string[] = [];
        ref.node.cursor().iterate((inner) => {
          if (inner.name === 'VectorSelector') metrics.push(selectorOf(inner.node).metric);
        });
        if (labels.length) groupings.push({ labels, metrics });
      }
    },
  });
  return { errors, selectors, groupings };
}

/** Series in a Prometheus text exposition: metric name -> label name -> values seen. */
export type Exposition = Map<string, Map<string, Set<string>>>;

export function parseExposition(text: string, into: Exposition = new Map()): Exposition {
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    const labels = into.get(match[1]) ?? new Map<string, Set<string>>();
    into.set(match[1], labels);
    for (const pair of (match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      const values = labels.get(pair[1]) ?? new Set<string>();
      values.add(JSON.parse(`"${pair[2]}"`));
      labels.set(pair[1], values);
    }
  }
  return into;
}
