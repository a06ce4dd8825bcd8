import {
  argumentPieces,
  contentText,
  countImages,
  isRecord,
  stopList,
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
  unsupported_parameter: { status: 400, type: 'invalid_request_error' },
  auth: { status: 401, type: 'authentication_error' },
  context_length: { status: 400, type: 'invalid_request_error' },
};

const BLOCK_TYPES = new Set(['text', 'image', 'tool_use', 'tool_result', 'document']);

/** Anthropic's checks of a content block list, so a wrong translation fails as it would at Anthropic. */
function checkBlocks(content: unknown, where: string, role: string): string | undefined {
  if (typeof content === 'string') return undefined;
  if (!Array.isArray(content)) return `${where}.content: must be a string or a list of blocks`;
  for (const [i, block] of content.entries()) {
    const at = `${where}.content.${i}`;
    if (!isRecord(block) || typeof block.type !== 'string' || !BLOCK_TYPES.has(block.type))
      return `${at}: unknown block type`;
    if (block.type === 'image') {
      const source = block.source;
      if (!isRecord(source)) return `${at}.source: Field required`;
      if (source.type === 'base64') {
        if (typeof source.media_type !== 'string' || typeof source.data !== 'string')
          return `${at}.source: base64 images need media_type and data`;
      } else if (source.type === 'url') {
        if (typeof source.url !== 'string') return `${at}.source.url: Field required`;
      } else return `${at}.source.type: must be 'base64' or 'url'`;
    }
    if (block.type === 'tool_use') {
      if (role !== 'assistant') return `${at}: tool_use blocks belong to assistant messages`;
      if (typeof block.id !== 'string' || typeof block.name !== 'string' || !isRecord(block.input))
        return `${at}: tool_use needs id, name and an input object`;
    }
    if (block.type === 'tool_result') {
      if (role !== 'user') return `${at}: tool_result blocks belong to user messages`;
      if (typeof block.tool_use_id !== 'string') return `${at}.tool_use_id: Field required`;
    }
  }
  return undefined;
}

/** The text of tool_result blocks (string content or text blocks). */
function toolResultTexts(content: unknown): string[] {
  if (!Array.isArray(content)) return [];
  const out: string[] = [];
  for (const block of content as Record<string, unknown>[]) {
    if (isRecord(block) && block.type === 'tool_result') out.push(contentText(block.content ?? '') ?? '');
  }
  return out;
}

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
  let images = 0;
  let toolResults: string[] = [];
  const toolUseIds = new Set<string>();
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
    const bad = checkBlocks(message.content, `messages.${index}`, message.role);
    if (bad) return { ok: false, reason: bad };
    if (Array.isArray(message.content)) {
      for (const block of message.content as Record<string, unknown>[]) {
        if (block.type === 'tool_use') toolUseIds.add(block.id as string);
        if (block.type === 'tool_result' && !toolUseIds.has(block.tool_use_id as string))
          return { ok: false, reason: `messages.${index}: tool_result for unknown tool_use_id` };
      }
    }
    texts.push(text);
    images += countImages(message.content);
    if (message.role === 'user') {
      toolResults = toolResultTexts(message.content);
      if (toolResults.length === 0) lastUserText = text;
    }
  }
  const tools: { name: string; parameters: unknown }[] = [];
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) return { ok: false, reason: 'tools: must be a list' };
    for (const [index, tool] of body.tools.entries()) {
      if (!isRecord(tool) || typeof tool.name !== 'string' || !isRecord(tool.input_schema))
        return { ok: false, reason: `tools.${index}: needs name and input_schema` };
      tools.push({ name: tool.name, parameters: tool.input_schema });
    }
  }
  const choice = isRecord(body.tool_choice) ? body.tool_choice : undefined;
  const toolChoice =
    choice?.type === 'none'
      ? 'none'
      : choice?.type === 'any'
        ? 'required'
        : choice?.type === 'tool' && typeof choice.name === 'string'
          ? { name: choice.name }
          : 'auto';

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
      tools,
      toolChoice,
      parallelToolCalls: choice?.disable_parallel_tool_use !== true,
      toolResults,
      images,
      stop: stopList(body.stop_sequences),
    },
  };
}

const id = (reply: ChatReply) => `msg_${reply.id}`;
const stopReason = (reply: ChatReply) =>
  reply.toolCalls
    ? 'tool_use'
    : reply.truncated
      ? 'max_tokens'
      : reply.stopped
        ? 'stop_sequence'
        : 'end_turn';
const content = (reply: ChatReply) =>
  reply.toolCalls
    ? reply.toolCalls.map((call) => ({
        type: 'tool_use',
        id: call.id,
        name: call.name,
        input: JSON.parse(call.arguments) as unknown,
      }))
    : [{ type: 'text', text: reply.text }];

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
      content: content(reply),
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
    (reply.toolCalls
      ? ''
      : serverSentEvent(
          { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
          'content_block_start',
        )) +
    serverSentEvent({ type: 'ping' }, 'ping'),

  streamDelta: (_reply, text) =>
    serverSentEvent(
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } },
      'content_block_delta',
    ),

  // Each tool_use block: start (id, name, empty input), input_json_delta pieces, stop.
  streamToolCalls: (reply) =>
    (reply.toolCalls ?? []).flatMap((call, index) => [
      serverSentEvent(
        {
          type: 'content_block_start',
          index,
          content_block: { type: 'tool_use', id: call.id, name: call.name, input: {} },
        },
        'content_block_start',
      ),
      ...argumentPieces(call.arguments).map((piece) =>
        serverSentEvent(
          { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: piece } },
          'content_block_delta',
        ),
      ),
      serverSentEvent({ type: 'content_block_stop', index }, 'content_block_stop'),
    ]),

  streamTail: (reply) =>
    (reply.toolCalls ? '' : serverSentEvent({ type: 'content_block_stop', index: 0 }, 'content_block_stop')) +
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
