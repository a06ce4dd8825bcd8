/**
 * What a key not allowed to see arms (see api-keys.ts) gets instead of the answering model's name: the
 * route's. The arm headers are only the obvious tell; an OpenAI body names its model too, and an error
 * names the targets the chain tried, so a client could learn its arm from either and pick routing keys
 * that land on the canary.
 *
 * Bodies are rewritten as text (no parse): outside a JSON string a `"model":` key is always the key itself,
 * since a quote inside a string is escaped (`\"model\":` never matches), so only `model` members change.
 */
const MODEL_MEMBER = /"model"(\s*):(\s*)"(?:[^"\\]|\\.)*"/g;

/** The JSON (or SSE `data:` lines of JSON) with every `model` member set to the route. */
export function maskModel(text: string, route: string): string {
  const name = JSON.stringify(route);
  return text.replace(
    MODEL_MEMBER,
    (_m, before: string, after: string) => `"model"${before}:${after}${name}`,
  );
}
