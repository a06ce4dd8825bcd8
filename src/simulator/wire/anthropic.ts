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

/** Anthropic messages (`POST /v1/messages`). */

const REFUSALS: Record<RefusalKind, { status: number; type: string }> = {
  rate_limit: { status: 429, type: 'rate_limit_error' },
  server_error: { status: 500, type: 'api_error' },
  overloaded: { status: 529, type: 'overloaded_error' },
  bad_request: { status: 400, type: 'invalid_request_error' },
  auth: { status: 401, type: 'authentication_error' },
};

function parseRequest(body: unknown): ParseResult {
  if (!isRecord(body)) return { ok: false, reason: 'the request body must be a JSON object' };
  const { model, messages, max_tokens: maxTokens, system } = body;
  if (typeof model !== 'string' || model === '') return { ok: false, reason: 'model: Field required' };
  // Unlike OpenAI, Anthropic requires the token limit on every request.
  if (!Number.isInteger(maxTokens) || (maxTokens as number) < 1) {
    return { ok: false, reason: 'max_tokens: Field required (a positive integer)' };
  }
  if (!Array.isArray(messages) || messages.length === 0)
    return { ok: false, reason: 'messages: at least one message is required' };

  const systemText = system === undefined ? '' : contentText(system);
  if (systemText === undefined)
    return { ok: false, reason: 'system: must be a string or a list of text blocks' };
  const texts = systemText ? [systemText] : [];
  let lastUserText = '';
  for (const [index, message] of messages.entries()) {
    const text = isRecord(message) ? contentText(message.content) : undefined;
    if (
      !isRecord(message) ||
      (message.role !== 'user' && message.role !== 'assistant') ||
      text === undefined
    ) {
      return {
        ok: false,
        reason: `messages.${index}: needs a role of 'user' or 'assistant' and text content`,
      };
    }
    texts.push(text);
    if (message.role === 'user') lastUserText = text;
  }

  return {
    ok: true,
    request: {
      model,
      texts,
      lastUserText,
      maxTokens: maxTokens as number,
      json: systemAsksForJson([systemText]),
      stream: body.stream === true,
      includeUsage: true,
    },
  };
}

const id = (reply: ChatReply) => `msg_${reply.id}`;
const stopReason = (reply: ChatReply) => (reply.truncated ? 'max_tokens' : 'end_turn');

export const anthropicWire: WireFormat = {
  name: 'anthropic',
  parseRequest,
  requestIdHeader: 'request-id',

  responseBody: (reply) =>
    JSON.stringify({
      id: id(reply),
      type: 'message',
      role: 'assistant',
      model: reply.model,
      content: [{ type: 'text', text: reply.text }],
      stop_reason: stopReason(reply),
      stop_sequence: null,
      usage: { input_tokens: reply.inputTokens, output_tokens: reply.outputTokens },
    }),

  refusal(kind, message, retryAfterSeconds) {
    const { status, type } = REFUSALS[kind];
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (kind === 'rate_limit') headers['retry-after'] = String(retryAfterSeconds);
    return { status, headers, body: JSON.stringify({ type: 'error', error: { type, message } }) };
  },

  streamHead: (reply) =>
    serverSentEvent(
      {
        type: 'message_start',
        message: {
          id: id(reply),
          type: 'message',
          role: 'assistant',
          model: reply.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: reply.inputTokens, output_tokens: 1 },
        },
      },
      'message_start',
    ) +
    serverSentEvent(
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      'content_block_start',
    ) +
    serverSentEvent({ type: 'ping' }, 'ping'),

  streamDelta: (_reply, text) =>
    serverSentEvent(
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } },
      'content_block_delta',
    ),

  streamTail: (reply) =>
    serverSentEvent({ type: 'content_block_stop', index: 0 }, 'content_block_stop') +
    serverSentEvent(
      {
        type: 'message_delta',
        delta: { stop_reason: stopReason(reply), stop_sequence: null },
        usage: { output_tokens: reply.outputTokens },
      },
      'message_delta',
    ) +
    serverSentEvent({ type: 'message_stop' }, 'message_stop'),

  streamBroken: () =>
    'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Wor\n\n',
};
