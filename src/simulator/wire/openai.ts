import {
  contentText,
  isRecord,
  serverSentEvent,
  systemAsksForJson,
  type ChatReply,
  type ParseResult,
  type RefusalKind,
  type WireFormat,
} from './format';

/**
 * OpenAI chat completions (`POST /v1/chat/completions`), also spoken by DeepSeek, Gemini's
 * OpenAI-compatible endpoint, OpenRouter and vLLM.
 */

const REFUSALS: Record<RefusalKind, { status: number; type: string; code: string | null }> = {
  rate_limit: { status: 429, type: 'requests', code: 'rate_limit_exceeded' },
  server_error: { status: 500, type: 'server_error', code: null },
  // OpenAI-compatible servers signal overload with 503 (there is no 529 in this dialect).
  overloaded: { status: 503, type: 'server_error', code: 'overloaded' },
  bad_request: { status: 400, type: 'invalid_request_error', code: null },
  auth: { status: 401, type: 'invalid_request_error', code: 'invalid_api_key' },
};

function parseRequest(body: unknown): ParseResult {
  if (!isRecord(body)) return { ok: false, reason: 'the request body must be a JSON object' };
  const { model, messages } = body;
  if (typeof model !== 'string' || model === '')
    return { ok: false, reason: "'model' must be a non-empty string" };
  if (!Array.isArray(messages) || messages.length === 0)
    return { ok: false, reason: "'messages' must be a non-empty array" };

  const texts: string[] = [];
  const systemTexts: string[] = [];
  let lastUserText = '';
  for (const [index, message] of messages.entries()) {
    const text = isRecord(message) ? contentText(message.content ?? '') : undefined;
    if (!isRecord(message) || typeof message.role !== 'string' || text === undefined) {
      return {
        ok: false,
        reason: `'messages.${index}' must have a 'role' and a string or text-part 'content'`,
      };
    }
    texts.push(text);
    if (message.role === 'user') lastUserText = text;
    if (message.role === 'system' || message.role === 'developer') systemTexts.push(text);
  }

  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  if (
    maxTokens !== undefined &&
    maxTokens !== null &&
    (!Number.isInteger(maxTokens) || (maxTokens as number) < 1)
  ) {
    return { ok: false, reason: "'max_tokens' must be a positive integer" };
  }
  const responseType = isRecord(body.response_format) ? body.response_format.type : undefined;
  return {
    ok: true,
    request: {
      model,
      texts,
      lastUserText,
      maxTokens: (maxTokens as number | null | undefined) ?? undefined,
      json:
        responseType === 'json_object' || responseType === 'json_schema' || systemAsksForJson(systemTexts),
      stream: body.stream === true,
      includeUsage: isRecord(body.stream_options) && body.stream_options.include_usage === true,
    },
  };
}

const id = (reply: ChatReply) => `chatcmpl-${reply.id}`;
const finishReason = (reply: ChatReply) => (reply.truncated ? 'length' : 'stop');
const usage = (reply: ChatReply) => ({
  prompt_tokens: reply.inputTokens,
  completion_tokens: reply.outputTokens,
  total_tokens: reply.inputTokens + reply.outputTokens,
});

function chunk(reply: ChatReply, delta: Record<string, unknown>, finish: string | null) {
  return serverSentEvent({
    id: id(reply),
    object: 'chat.completion.chunk',
    created: reply.created,
    model: reply.model,
    system_fingerprint: null,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });
}

export const openaiWire: WireFormat = {
  name: 'openai',
  parseRequest,
  requestIdHeader: 'x-request-id',

  responseBody: (reply) =>
    JSON.stringify({
      id: id(reply),
      object: 'chat.completion',
      created: reply.created,
      model: reply.model,
      system_fingerprint: null,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: reply.text, refusal: null },
          logprobs: null,
          finish_reason: finishReason(reply),
        },
      ],
      usage: usage(reply),
    }),

  refusal(kind, message, retryAfterSeconds) {
    const { status, type, code } = REFUSALS[kind];
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (kind === 'rate_limit') headers['retry-after'] = String(retryAfterSeconds);
    return { status, headers, body: JSON.stringify({ error: { message, type, param: null, code } }) };
  },

  // The first chunk announces the role, as OpenAI's does.
  streamHead: (reply) => chunk(reply, { role: 'assistant', content: '', refusal: null }, null),
  streamDelta: (reply, text) => chunk(reply, { content: text }, null),
  streamTail(reply, includeUsage) {
    let tail = chunk(reply, {}, finishReason(reply));
    // `stream_options.include_usage`: one more chunk with the usage and no choices.
    if (includeUsage) {
      tail += serverSentEvent({
        id: id(reply),
        object: 'chat.completion.chunk',
        created: reply.created,
        model: reply.model,
        system_fingerprint: null,
        choices: [],
        usage: usage(reply),
      });
    }
    return tail + serverSentEvent('[DONE]');
  },
  streamBroken: (reply) =>
    `data: {"id":"${id(reply)}","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Wor\n\n`,
};
