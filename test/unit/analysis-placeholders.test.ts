/**
 * Placeholders in metric queries: a value cannot change the query. Checked with Prometheus's own grammar
 * (@prometheus-io/lezer-promql, the one its UI uses): the rendered query parses, names the same selectors
 * and matchers, and each matcher holds the value exactly.
 */
import { describe, expect, it } from 'vitest';
import {
  checkPromqlTemplate,
  escapePromqlString,
  placeholdersOf,
  renderPromql,
  renderUrlTemplate,
} from '../../src/decision/analysis/placeholders';
import { queryNames } from '../helpers/promql';

const HOSTILE = [
  'support-bot',
  'a"}) or vector(1) #',
  "a'} or on() vector(0) or x{y='",
  'back\\slash\\"',
  'new\nline\ttab\r',
  'a\u0000b\u007f',
  'unicode é ✓ \u2028',
  'my.route+(x)|[y]*?^$',
];

const values = (v: string) => ({ route: v, arm: 'canary', variant: v, target: v });

describe('PromQL placeholders', () => {
  it.each(HOSTILE)(
    'a value %j stays a value: the query keeps its selectors, the matcher holds it exactly',
    (v) => {
      const query = `sum(rate(app_errors_total{route="{{route}}",arm='{{arm}}',model="{{target}}"}[5m])) / sum(rate(app_requests_total{route="{{route}}"}[5m]))`;
      const rendered = renderPromql(query, values(v));
      const names = queryNames(rendered);
      expect(names.errors).toEqual([]);
      expect(names.selectors.map((s) => s.metric)).toEqual(['app_errors_total', 'app_requests_total']);
      expect(names.selectors[0].matchers).toEqual([
        { label: 'route', op: '=', value: v },
        { label: 'arm', op: '=', value: 'canary' },
        { label: 'model', op: '=', value: v },
      ]);
      expect(names.selectors[1].matchers).toEqual([{ label: 'route', op: '=', value: v }]);
    },
  );

  it('inside a regex matcher the value matches itself only (its metacharacters escaped)', () => {
    const rendered = renderPromql('up{job=~"{{route}}-.*",x!~"{{route}}"}', values('my.route+(x)'));
    const [selector] = queryNames(rendered).selectors;
    expect(selector.matchers).toEqual([
      { label: 'job', op: '=~', value: 'my\\.route\\+\\(x\\)-.*' },
      { label: 'x', op: '!~', value: 'my\\.route\\+\\(x\\)' },
    ]);
    const regex = new RegExp(`^${selector.matchers[1].value}$`);
    expect(regex.test('my.route+(x)')).toBe(true);
    expect(regex.test('myXroute+(x)')).toBe(false);
  });

  it('refuses a placeholder outside a quoted string, in a raw string, unknown, or an unclosed string', () => {
    const refusal = (q: string) => {
      try {
        checkPromqlTemplate(q);
      } catch (err) {
        return (err as Error).message;
      }
      return 'accepted';
    };
    expect(refusal('app_errors_total{route={{route}}}')).toBe(
      '{{route}} must be inside a quoted string, e.g. route="{{route}}" (outside one, a value could change the query)',
    );
    expect(refusal('sum(app_{{route}}_total)')).toMatch(/^\{\{route\}\} must be inside a quoted string/);
    expect(refusal('up{job=`{{route}}`}')).toBe(
      '{{route}} is inside a `raw` string, which has no escapes: use "..." there',
    );
    expect(refusal('up{job="{{routes}}"}')).toBe(
      'unknown placeholder {{routes}} (known: {{route}}, {{arm}}, {{variant}}, {{target}})',
    );
    expect(refusal('up{job="{{route}}}')).toBe('a "string" is not closed');
    expect(refusal('up # {{route}}\n')).toBe('accepted'); // in a comment: not rendered into anything
    expect(refusal('up{a="x\\"{{ arm }}"}')).toBe('accepted');
    expect(checkPromqlTemplate('up{a="{{route}}",b=\'{{arm}}\',c="{{route}}"}')).toEqual(['route', 'arm']);
  });

  it("escapes backslashes, control characters and the string's own quote only, as Prometheus's lexer wants", () => {
    expect(escapePromqlString(`a"b'c\\d\ne\tf\rg\u0001`, '"')).toBe(`a\\"b'c\\\\d\\ne\\tf\\rg\\u0001`);
    expect(escapePromqlString(`a"b'c`, "'")).toBe(`a"b\\'c`);
  });
});

describe('URL placeholders', () => {
  it('percent-encodes each value, so it cannot add a parameter or a path', () => {
    expect(renderUrlTemplate('/m/{{route}}?arm={{arm}}&t={{target}}', values('a&b=c/../d?e#f'))).toBe(
      '/m/a%26b%3Dc%2F..%2Fd%3Fe%23f?arm=canary&t=a%26b%3Dc%2F..%2Fd%3Fe%23f',
    );
    expect(placeholdersOf('/x/{{route}}/{{ target }}')).toEqual(['route', 'target']);
  });
});
