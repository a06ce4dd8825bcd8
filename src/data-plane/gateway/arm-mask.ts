/**
 * What a key not allowed to see arms (see api-keys.ts) gets instead of the answering model's marks. The arm
 * headers are only the obvious tell: an OpenAI body names its model, carries the upstream's completion
 * `id` (`chatcmpl-AbC…` from OpenAI, `chatcmpl-<x-request-id>` from a translated Anthropic answer) and
 * its `system_fingerprint` (a string from some upstreams, absent from others), and an error names the
 * targets the chain tried; a client could learn its arm from any of them and pick routing keys that land
 * on the canary. So, for such keys, every answer and every stream chunk of either arm says:
 *
 *   "id": "chatcmpl-<x-request-id>"   (the gateway's own id, the same in every chunk of one stream)
 *   "model": "<route>"
 *   "system_fingerprint": null         (added where the upstream had none)
 *
 * Bodies are rewritten as text, not parsed and rebuilt: the upstream's bytes are only forwarded, and the
 * router has already parsed them once. Outside a JSON string a `"model":` key is always the key itself,
 * since a quote inside a string is escaped (`\"model\":` never matches), so only `model` and
 * `system_fingerprint` members change. `id` is different: tool calls have ids too (which the client must
 * send back), so only the top-level one is rewritten, found as the object's first member (where OpenAI,
 * the SDKs' servers and our own writer put it); a body whose first member is not `id` takes the slow way
 * (parse, set, serialize).
 */
const MODEL_OR_FINGERPRINT = /"(model|system_fingerprint)"\s*:\s*(?:null|"(?:[^"\\]|\\.)*")/g;
const ID_FIRST = /^\s*\{\s*"id"\s*:\s*"(?:[^"\\]|\\.)*"/;

export interface ArmMask {
  /** The gateway's request id: the completion id becomes `chatcmpl-<requestId>`. */
  requestId: string;
  /** The route: what `model` says. */
  route: string;
}

/** The completion id a masked answer carries (also what translated answers carry, see openai-format.ts). */
export const maskedCompletionId = (requestId: string): string => `chatcmpl-${requestId}`;

/** One JSON object (a chat completion or one chunk's `data`) with the arm's marks replaced. */
export function maskArmJson(json: string, mask: ArmMask): string {
  const head = ID_FIRST.exec(json);
  if (!head) return maskParsed(json, mask);
  const model = JSON.stringify(mask.route);
  let fingerprint = false;
  const rest = json.slice(head[0].length).replace(MODEL_OR_FINGERPRINT, (_m, key: string) => {
    if (key === 'model') return `"model":${model}`;
    fingerprint = true;
    return '"system_fingerprint":null';
  });
  const id = `{"id":${JSON.stringify(maskedCompletionId(mask.requestId))}`;
  return fingerprint ? `${id}${rest}` : `${id},"system_fingerprint":null${rest}`;
}

/** Server-sent events (`data: <json>` each, blank-line separated), each JSON payload masked. */
export function maskArmSse(sse: string, mask: ArmMask): string {
  let out = '';
  let at = 0;
  while (at < sse.length) {
    let end = sse.indexOf('\n\n', at);
    if (end < 0) end = sse.length;
    const event = sse.slice(at, end);
    out +=
      event.startsWith('data: {') && !event.includes('\n')
        ? `data: ${maskArmJson(event.slice(6), mask)}`
        : event; // `[DONE]`, comments, and (never sent by us) multi-line data pass unchanged
    if (end < sse.length) out += '\n\n';
    at = end + 2;
  }
  return out;
}

/** The slow way, for a body whose first member is not `id`. Not JSON at all: returned unchanged. */
function maskParsed(json: string, mask: ArmMask): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return json;
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return json;
  const { id: _id, model: _model, system_fingerprint: _fp, ...rest } = parsed as Record<string, unknown>;
  return JSON.stringify({
    id: maskedCompletionId(mask.requestId),
    ...rest,
    model: mask.route,
    system_fingerprint: null,
  });
}
