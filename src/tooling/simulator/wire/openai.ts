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
  unsupported_parameter: { status: 400, type: 'invalid_request_error', code: 'unsupported_parameter' },
  auth: { status: 401, type: 'invalid_request_error', code: 'invalid_api_key' },
  context_length: { status: 400, type: 'invalid_request_error', code: 'context_length_exceeded' },
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
  let images = 0;
  let toolResults: string[] = [];
  for (const [index, message] of messages.entries()) {
    const text = isRecord(message) ? contentText(message.content ?? '') : undefined;
    if (!isRecord(message) || typeof message.role !== 'string' || text === undefined) {
      return {
        ok: false,
        reason: `'messages.${index}' must have a 'role' and a string or content-part 'content'`,
      };
    }
    texts.push(text);
    images += countImages(message.content);
    if (message.role === 'tool') {
      if (typeof message.tool_call_id !== 'string')
        return { ok: false, reason: `'messages.${index}.tool_call_id' is required for a tool message` };
      toolResults.push(text);
    } else toolResults = [];
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
  const tools: { name: string; parameters: unknown }[] = [];
  if (body.tools !== undefined && body.tools !== null) {
    if (!Array.isArray(body.tools)) return { ok: false, reason: "'tools' must be an array" };
    for (const [index, tool] of body.tools.entries()) {
      const fn = isRecord(tool) ? tool.function : undefined;
      if (!isRecord(tool) || tool.type !== 'function' || !isRecord(fn) || typeof fn.name !== 'string')
        return {
          ok: false,
          reason: `'tools.${index}' must be { type: 'function', function: { name, parameters } }`,
        };
      tools.push({ name: fn.name, parameters: fn.parameters });
    }
  }
  const choice = body.tool_choice;
  const toolChoice =
    choice === 'none' || choice === 'required' || choice === 'auto'
      ? choice
      : isRecord(choice) && isRecord(choice.function) && typeof choice.function.name === 'string'
        ? { name: choice.function.name }
        : 'auto';
  const format = isRecord(body.response_format) ? body.response_format : undefined;
  const responseType = format?.type;
  const jsonSchema =
    responseType === 'json_schema' && isRecord(format?.json_schema) ? format.json_schema.schema : undefined;
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
      tools,
      toolChoice,
      parallelToolCalls: body.parallel_tool_calls !== false,
      toolResults,
      images,
      stop: stopList(body.stop),
      jsonSchema,
    },
  };
}

const id = (reply: ChatReply) => `chatcmpl-${reply.id}`;
const finishReason = (reply: ChatReply) =>
  reply.toolCalls ? 'tool_calls' : reply.truncated ? 'length' : 'stop';
const toolCallsOf = (reply: ChatReply) =>
  reply.toolCalls?.map((call) => ({
    id: call.id,
    type: 'function',
    function: { name: call.name, arguments: call.arguments },
  }));
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
          message: reply.toolCalls
            ? { role: 'assistant', content: null, tool_calls: toolCallsOf(reply), refusal: null }
            : { role: 'assistant', content: reply.text, refusal: null },
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
  // OpenAI's shape: the first delta of a call has its id, type and name; later ones argument pieces.
  streamToolCalls: (reply) =>
    (reply.toolCalls ?? []).flatMap((call, index) => [
      chunk(
        reply,
        {
          tool_calls: [
            { index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } },
          ],
        },
        null,
      ),
      ...argumentPieces(call.arguments).map((piece) =>
        chunk(reply, { tool_calls: [{ index, function: { arguments: piece } }] }, null),
      ),
    ]),
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
