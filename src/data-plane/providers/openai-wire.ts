import { ProviderError } from './errors';
import type { Pricing } from './pricing';
import type {
  ChatMessage,
  ChatRequest,
  CompletionResult,
  FinishReason,
  Target,
  TargetParams,
  ToolCall,
  Usage,
} from './types';

/**
 * The OpenAI chat-completions wire format, shared by the SDK adapter and the lean transport so both
 * build the same request and normalize responses with the same code (parity by construction).
 */

export interface ChatCompletionBody {
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  max_tokens?: number;
  response_format?: { type: 'json_object' };
  stream?: boolean;
  stream_options?: { include_usage: boolean };
}

export function buildChatBody(target: Target, messages: ChatMessage[], stream: boolean): ChatCompletionBody {
  const body: ChatCompletionBody = { model: target.model, messages };
  const params = target.params;
  if (params) {
    if (params.temperature !== undefined) body.temperature = params.temperature;
    // `max_tokens` rather than `max_completion_tokens`: every OpenAI-compatible upstream accepts it.
    if (params.maxTokens !== undefined) body.max_tokens = params.maxTokens;
    if (params.json) body.response_format = { type: 'json_object' };
  }
  if (stream) {
    body.stream = true;
    body.stream_options = { include_usage: true };
  }
  return body;
}

/**
 * The upstream body for a caller's request: the caller's body as written, with `model` set to the target's
 * and the target's params merged UNDER the caller's fields; streams always ask for usage (the router needs
 * it; the usage chunk is dropped on the way back unless the caller asked too).
 *
 * Fast path, no re-serialization: when the caller's bytes start with the `model` field (what the SDKs
 * send), that one field is spliced out of the bytes and the rest is sent as received. This is only sound
 * when the bytes hold one top-level `model` (a second one, read last by JSON.parse and by most upstreams,
 * would be sent as written): the gateway refuses bodies with a top-level key twice (see
 * gateway/duplicate-keys.ts), and an in-process caller passing `raw` must hand over such bytes too.
 */
export function upstreamChatBody(target: Target, request: ChatRequest, stream: boolean): string {
  const { body, raw } = request;
  const extra = paramsUnder(target.params, body);
  const wantsUsage = stream && body.stream_options?.include_usage !== true;
  if (raw !== undefined && (body.stream === true) === stream && !(wantsUsage && 'stream_options' in body)) {
    const head = MODEL_FIRST.exec(raw);
    if (head) {
      let prefix = `{"model":${JSON.stringify(target.model)},`;
      if (extra) for (const key in extra) prefix += `${JSON.stringify(key)}:${JSON.stringify(extra[key])},`;
      if (wantsUsage) prefix += '"stream_options":{"include_usage":true},';
      const rest = raw.slice(head[0].length);
      // `{"model":"x"}` alone: the splice must not leave a dangling comma.
      return rest.trimStart().startsWith('}') ? `${prefix.slice(0, -1)}${rest}` : `${prefix}${rest}`;
    }
  }
  const out: Record<string, unknown> = { ...extra, ...body, model: target.model };
  if (stream) {
    out.stream = true;
    if (wantsUsage) out.stream_options = { ...body.stream_options, include_usage: true };
  } else {
    delete out.stream;
    delete out.stream_options;
  }
  return JSON.stringify(out);
}

/** `{ "model": "<json string>" ,` at the very start: the first key of the top-level object. */
const MODEL_FIRST = /^\s*\{\s*"model"\s*:\s*"(?:[^"\\]|\\.)*"\s*,?/;

/** The target's params as OpenAI fields the caller did not set itself; undefined when none remain. */
function paramsUnder(
  params: TargetParams | undefined,
  body: ChatRequest['body'],
): Record<string, unknown> | undefined {
  if (!params) return undefined;
  let out: Record<string, unknown> | undefined;
  if (params.temperature !== undefined && body.temperature == null)
    (out ??= {}).temperature = params.temperature;
  if (params.maxTokens !== undefined && body.max_tokens == null && body.max_completion_tokens == null)
    (out ??= {}).max_tokens = params.maxTokens;
  if (params.json && body.response_format == null) (out ??= {}).response_format = { type: 'json_object' };
  return out;
}

/** The caller asked for a JSON answer (JSON mode or a JSON schema), by params or by its own body. */
export function wantsJson(target: Target, request: ChatRequest | undefined): boolean {
  const format = request?.body.response_format as { type?: unknown } | null | undefined;
  if (format && typeof format === 'object')
    return format.type === 'json_object' || format.type === 'json_schema';
  return target.params?.json === true;
}

export function mapOpenAIFinishReason(reason: unknown): FinishReason {
  switch (reason) {
    case 'stop':
      return 'stop';
    case 'length':
      return 'length';
    case 'content_filter':
      return 'content_filter';
    case 'tool_calls':
    case 'function_call':
      return 'tool_calls';
    default:
      return 'unknown';
  }
}

export function targetKey(target: Target): string {
  return `${target.provider}:${target.model}`;
}

interface ChatCompletionJson {
  id?: unknown;
  choices?: { message?: { content?: unknown; tool_calls?: unknown }; finish_reason?: unknown }[];
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } | null;
}

export function malformed(target: Target, what: string): ProviderError {
  return new ProviderError({ errorClass: 'malformed_response', target: targetKey(target), message: what });
}

/** A parsed chat completion → normalized result; a body that is JSON but not a completion is malformed. */
export function normalizeChatCompletion(
  json: unknown,
  target: Target,
  latencyMs: number,
  pricing: Pricing,
): CompletionResult {
  const body = json as ChatCompletionJson;
  const choice =
    body && typeof body === 'object' && Array.isArray(body.choices) ? body.choices[0] : undefined;
  if (!choice || typeof choice !== 'object') throw malformed(target, 'response has no choices');
  const content = choice.message?.content;
  if (content !== null && content !== undefined && typeof content !== 'string') {
    throw malformed(target, 'choices[0].message.content is not a string');
  }
  const usage = toUsage(body.usage);
  const cost = pricing.cost(target.model, usage);
  const result: CompletionResult = {
    target,
    text: content ?? '',
    finishReason: mapOpenAIFinishReason(choice.finish_reason),
    usage,
    latencyMs,
    costUsd: cost.costUsd,
    costKnown: cost.known,
  };
  if (typeof body.id === 'string') result.providerRequestId = body.id;
  const toolCalls = choice.message?.tool_calls;
  if (Array.isArray(toolCalls) && toolCalls.length > 0) result.toolCalls = toolCalls as ToolCall[];
  return result;
}

function toUsage(usage: ChatCompletionJson['usage']): Usage {
  return {
    inputTokens: typeof usage?.prompt_tokens === 'number' ? usage.prompt_tokens : 0,
    outputTokens: typeof usage?.completion_tokens === 'number' ? usage.completion_tokens : 0,
  };
}

interface ToolCallDelta {
  index?: unknown;
  id?: unknown;
  type?: unknown;
  function?: { name?: unknown; arguments?: unknown };
}

interface ChatChunkJson {
  id?: unknown;
  choices?: {
    delta?: { content?: unknown; tool_calls?: ToolCallDelta[]; refusal?: unknown };
    finish_reason?: unknown;
  }[];
  usage?: ChatCompletionJson['usage'];
  error?: unknown;
}

/**
 * Folds `chat.completion.chunk`s into deltas and a final result. A stream that ends without a finish
 * reason was cut off: `finish()` throws a `connection` error rather than report a truncated success.
 */
export class ChatStreamAccumulator {
  private parts: string[] = [];
  private id: string | undefined;
  private finish_: FinishReason | undefined;
  private usage: Usage | undefined;
  private tools: ToolCall[] | undefined;
  /** The last chunk pushed carried answer content (text, a tool call or a refusal), not only metadata. */
  substantive = false;

  constructor(
    private readonly target: Target,
    private readonly pricing: Pricing,
  ) {}

  /** Returns the delta text of a chunk (possibly empty). */
  push(chunk: unknown): string {
    const data = chunk as ChatChunkJson;
    this.substantive = false;
    if (!data || typeof data !== 'object') throw malformed(this.target, 'stream chunk is not an object');
    if (this.id === undefined && typeof data.id === 'string') this.id = data.id;
    if (data.usage) this.usage = toUsage(data.usage);
    const choice = Array.isArray(data.choices) ? data.choices[0] : undefined;
    if (!choice) return '';
    if (choice.finish_reason) this.finish_ = mapOpenAIFinishReason(choice.finish_reason);
    const delta = choice.delta;
    if (!delta) return '';
    if (Array.isArray(delta.tool_calls)) {
      for (const d of delta.tool_calls) this.toolDelta(d);
      this.substantive = delta.tool_calls.length > 0;
    }
    if (typeof delta.refusal === 'string' && delta.refusal.length > 0) this.substantive = true;
    const text = delta.content;
    if (typeof text === 'string' && text.length > 0) {
      this.parts.push(text);
      this.substantive = true;
      return text;
    }
    return '';
  }

  /** Tool calls arrive in pieces: the first delta of an index has id and name, later ones argument text. */
  private toolDelta(d: ToolCallDelta): void {
    const tools = (this.tools ??= []);
    const index = typeof d.index === 'number' ? d.index : tools.length;
    let call = tools[index];
    if (!call) {
      call = { id: '', type: 'function', function: { name: '', arguments: '' } };
      tools[index] = call;
    }
    if (typeof d.id === 'string') call.id = d.id;
    if (typeof d.function?.name === 'string') call.function.name += d.function.name;
    if (typeof d.function?.arguments === 'string') call.function.arguments += d.function.arguments;
  }

  get finished(): boolean {
    return this.finish_ !== undefined;
  }

  finish(latencyMs: number, timeToFirstTokenMs: number | undefined): CompletionResult {
    if (this.finish_ === undefined) {
      throw new ProviderError({
        errorClass: 'connection',
        target: targetKey(this.target),
        message: 'stream ended before the answer was complete (no finish_reason)',
      });
    }
    const text = this.parts.join('');
    const usage = this.usage ?? { inputTokens: 0, outputTokens: 0 };
    const cost = this.pricing.cost(this.target.model, usage);
    const result: CompletionResult = {
      target: this.target,
      text,
      finishReason: this.finish_,
      usage,
      latencyMs,
      costUsd: cost.costUsd,
      costKnown: cost.known,
    };
    if (timeToFirstTokenMs !== undefined) result.timeToFirstTokenMs = timeToFirstTokenMs;
    if (this.id !== undefined) result.providerRequestId = this.id;
    if (this.tools) result.toolCalls = this.tools.filter(Boolean);
    return result;
  }
}

/**
 * The chunks of a caller's stream, passed through: each upstream event is kept as it came and handed on
 * with the next chunk that carries answer content, so a fallback stays possible until the first real
 * delta (role-only and empty chunks do not commit the stream). What is left at the end (finish reason,
 * usage) is the tail. The usage-only chunk is dropped unless the caller asked for usage itself: the
 * gateway always asks the upstream for it.
 */
export class SsePassThrough {
  private pending = '';

  constructor(private readonly includeUsage: boolean) {}

  /** Adds one event's `data`; returns the events to send now when this chunk was substantive. */
  add(chunk: unknown, data: string, substantive: boolean): string | undefined {
    const c = chunk as ChatChunkJson | undefined;
    const usageOnly = c?.usage && (!Array.isArray(c.choices) || c.choices.length === 0);
    if (!usageOnly || this.includeUsage) this.pending += `data: ${data}\n\n`;
    if (!substantive) return undefined;
    const out = this.pending;
    this.pending = '';
    return out;
  }

  tail(): string {
    return this.pending;
  }
}
