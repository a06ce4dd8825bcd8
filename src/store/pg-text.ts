/**
 * Text a client wrote, made storable: Postgres refuses NUL in `text` and `jsonb`, and `jsonb` refuses a lone
 * surrogate escape. A row carrying either would be refused, and with it the request's event: a client could
 * make its own requests vanish from a rollout's statistics. Both become U+FFFD; everything else is kept.
 */
// eslint-disable-next-line no-control-regex
const UNSTORABLE = /[\u0000\ud800-\udfff]/;
// eslint-disable-next-line no-control-regex
const NUL = /\u0000/g;
/** A high surrogate without its low one, or a low one without its high one (code units, no `u` flag). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export function pgSafeText(value: string): string {
  return UNSTORABLE.test(value) ? value.replace(NUL, '\ufffd').replace(LONE_SURROGATE, '\ufffd') : value;
}

/** JSON.stringify emits NUL as `\u0000` and a lone surrogate as `\udXXX`; either sends it through the slow path. */
const UNSTORABLE_ESCAPE = /\\u0000|\\ud[89a-f]/i;

export function pgSafeJson(value: unknown): string {
  const json = JSON.stringify(value);
  if (!UNSTORABLE_ESCAPE.test(json)) return json;
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'string' ? pgSafeText(v) : v));
}
