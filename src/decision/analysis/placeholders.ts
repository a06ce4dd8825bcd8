/**
 * The placeholders of a metric check's query: `{{route}}`, `{{arm}}` ('stable' or 'canary', as the gateway
 * labels its `tag`), `{{variant}}` and `{{target}}` (the arm's model, `provider:model`). A value comes from
 * a spec or a routing state, not from the query's author, so it is escaped for where it lands:
 *
 * - PromQL: a placeholder may only sit inside a "..." or '...' string literal (refused elsewhere: outside a
 *   string, no escape can keep a value from becoming syntax; a `...` raw string has no escapes). Inside
 *   one, `\`, quotes and control characters are escaped as Go's string literals want them, and inside the
 *   regex of a `=~` / `!~` matcher the value's regex metacharacters are escaped first, so `my.route`
 *   matches itself and not `myXroute`.
 * - URLs (an HTTP JSON source's path and query): percent-encoded.
 *
 * Pure code: the spec's schema validates templates with it, the activity renders them.
 */

export const PLACEHOLDERS = ['route', 'arm', 'variant', 'target'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];
export type PlaceholderValues = Readonly<Record<Placeholder, string>>;

/** A new expression each time: a shared global one keeps its lastIndex between callers. */
const placeholderRe = () => /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

interface Occurrence {
  name: Placeholder;
  start: number;
  end: number;
  /** Inside the string of a regex matcher (=~, !~). */
  regex: boolean;
  /** The string's quote: only it is escaped (Prometheus refuses \' inside "..." and \" inside '...'). */
  quote: '"' | "'";
}

/** The placeholders a template uses (each once), refusing unknown ones. */
export function placeholdersOf(template: string): Placeholder[] {
  const names = new Set<Placeholder>();
  for (const m of template.matchAll(placeholderRe())) names.add(known(m[1]));
  return [...names];
}

function known(name: string): Placeholder {
  if (!(PLACEHOLDERS as readonly string[]).includes(name))
    throw new Error(
      `unknown placeholder {{${name}}} (known: ${PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')})`,
    );
  return name as Placeholder;
}

/** Where each placeholder of a PromQL query is; throws when one is not inside a quoted string. */
function scanPromql(query: string): Occurrence[] {
  const found: Occurrence[] = [];
  let quote: string | null = null;
  let regex = false;
  for (let i = 0; i < query.length; i++) {
    const c = query[i];
    if (quote) {
      if (c === '\\' && quote !== '`') {
        i++;
        continue;
      }
      if (c === quote) {
        quote = null;
        continue;
      }
    } else if (c === '"' || c === "'" || c === '`') {
      quote = c;
      regex = /[=!]~\s*$/.test(query.slice(0, i));
      continue;
    } else if (c === '#') {
      // A comment runs to the end of the line: a placeholder there is as good as outside a string.
      const end = query.indexOf('\n', i);
      i = end < 0 ? query.length : end;
      continue;
    }
    if (c === '{' && query[i + 1] === '{') {
      const re = placeholderRe();
      re.lastIndex = i;
      const m = re.exec(query);
      if (!m || m.index !== i) continue;
      const name = known(m[1]);
      if (quote !== '"' && quote !== "'")
        throw new Error(
          quote === '`'
            ? `{{${name}}} is inside a \`raw\` string, which has no escapes: use "..." there`
            : `{{${name}}} must be inside a quoted string, e.g. route="{{${name}}}" (outside one, a value could change the query)`,
        );
      found.push({ name, start: i, end: i + m[0].length, regex, quote });
      i += m[0].length - 1;
    }
  }
  if (quote) throw new Error(`a ${quote}string${quote} is not closed`);
  return found;
}

/** Refuses a PromQL template whose placeholders could change the query (see the header). */
export function checkPromqlTemplate(query: string): Placeholder[] {
  return [...new Set(scanPromql(query).map((o) => o.name))];
}

/**
 * Escapes a value for the inside of a PromQL string literal quoted with `quote`: backslashes, that quote
 * and control characters (Prometheus's lexer takes \\, the string's own quote, \n \r \t and \uXXXX).
 */
export function escapePromqlString(value: string, quote: '"' | "'" = '"'): string {
  // eslint-disable-next-line no-control-regex -- control characters are what this escapes
  return value.replace(/[\\"'\u0000-\u001f\u007f\u2028\u2029]/g, (c) => {
    switch (c) {
      case '\\':
        return '\\\\';
      case '"':
      case "'":
        return c === quote ? `\\${c}` : c;
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      default:
        return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    }
  });
}

/** Escapes RE2's metacharacters, so the value matches itself in a `=~` matcher. */
export function escapeRegex(value: string): string {
  return value.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/** The query with each placeholder replaced by its escaped value. */
export function renderPromql(query: string, values: PlaceholderValues): string {
  let out = '';
  let at = 0;
  for (const o of scanPromql(query)) {
    const raw = values[o.name];
    out += query.slice(at, o.start) + escapePromqlString(o.regex ? escapeRegex(raw) : raw, o.quote);
    at = o.end;
  }
  return out + query.slice(at);
}

/** A URL path and query with each placeholder percent-encoded. */
export function renderUrlTemplate(template: string, values: PlaceholderValues): string {
  return template.replace(placeholderRe(), (_m, name: string) => encodeURIComponent(values[known(name)]));
}
