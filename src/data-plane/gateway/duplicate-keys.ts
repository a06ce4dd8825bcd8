/**
 * A JSON object with the same top-level key twice means different things to different readers: JSON.parse
 * (routing, auth) takes the last, the upstream body is spliced at the first `"model"` (openai-wire.ts), and
 * upstream parsers differ (some take the first). `{"model":"a",…,"model":"b"}` was routed and authorized
 * as `b` but reached the upstream under `b` as its model name too, whatever the route's target. The gateway
 * refuses such a body instead: nothing can be read two ways.
 *
 * Cheap on the request path: JSON.parse has already validated the text, so counting the top-level members
 * is a scan of its structure (string contents are skipped with `indexOf`), and the keys are only decoded
 * when the count differs from the parse's, which a body without duplicates never does.
 */

/** The first top-level key that appears twice in `text` (the JSON `parsed` came from), or undefined. */
export function duplicateTopLevelKey(text: string, parsed: object): string | undefined {
  let count = 0;
  for (const _key in parsed) count++;
  const keys = topLevelKeys(text, count);
  if (keys === undefined) return undefined;
  const seen = new Set<string>();
  for (const raw of keys) {
    const key = JSON.parse(raw) as string; // `"mod\u0065l"` is `model` too
    if (seen.has(key)) return key;
    seen.add(key);
  }
  return undefined;
}

/**
 * The raw key strings of the top-level object when there are more than `expected` of them (else
 * undefined, having collected nothing). `text` is known to be valid JSON whose top level is an object.
 */
function topLevelKeys(text: string, expected: number): string[] | undefined {
  let members = 0;
  let depth = 0;
  let expectKey = false;
  let keys: string[] | undefined;
  for (let pass = 0; pass < 2; pass++) {
    members = 0;
    depth = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 34 /* " */) {
        const end = stringEnd(text, i);
        if (depth === 1 && expectKey) {
          members++;
          expectKey = false;
          keys?.push(text.slice(i, end + 1));
        }
        i = end;
      } else if (c === 123 /* { */ || c === 91 /* [ */) {
        depth++;
        if (depth === 1) expectKey = true;
      } else if (c === 125 /* } */ || c === 93 /* ] */) {
        depth--;
      } else if (c === 44 /* , */ && depth === 1) {
        expectKey = true;
      }
    }
    if (keys) return keys;
    if (members <= expected) return undefined;
    keys = []; // a duplicate: a second pass collects the keys to name it
  }
  return keys;
}

/** Index of the quote closing the string that opens at `start`. */
function stringEnd(text: string, start: number): number {
  let at = start + 1;
  for (;;) {
    const quote = text.indexOf('"', at);
    if (quote < 0) return text.length - 1; // unreachable for valid JSON
    let backslashes = 0;
    for (let j = quote - 1; text.charCodeAt(j) === 92 /* \ */; j--) backslashes++;
    if (backslashes % 2 === 0) return quote;
    at = quote + 1;
  }
}
