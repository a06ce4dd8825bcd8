import { ProviderError } from './errors';
import type { Pricing } from './pricing';
import type { ChatMessage, CompletionResult, FinishReason, Target, Usage } from './types';

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
  choices?: { message?: { content?: unknown }; finish_reason?: unknown }[];
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
  return result;
}

function toUsage(usage: ChatCompletionJson['usage']): Usage {
  return {
    inputTokens: typeof usage?.prompt_tokens === 'number' ? usage.prompt_tokens : 0,
    outputTokens: typeof usage?.completion_tokens === 'number' ? usage.completion_tokens : 0,
  };
}

interface ChatChunkJson {
  id?: unknown;
  choices?: { delta?: { content?: unknown }; finish_reason?: unknown }[];
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

  constructor(
    private readonly target: Target,
    private readonly pricing: Pricing,
  ) {}

  /** Returns the delta text of a chunk (possibly empty). */
  push(chunk: unknown): string {
    const data = chunk as ChatChunkJson;
    if (!data || typeof data !== 'object') throw malformed(this.target, 'stream chunk is not an object');
    if (this.id === undefined && typeof data.id === 'string') this.id = data.id;
    if (data.usage) this.usage = toUsage(data.usage);
    const choice = Array.isArray(data.choices) ? data.choices[0] : undefined;
    if (!choice) return '';
    if (choice.finish_reason) this.finish_ = mapOpenAIFinishReason(choice.finish_reason);
    const text = choice.delta?.content;
    if (typeof text === 'string' && text.length > 0) {
      this.parts.push(text);
      return text;
    }
    return '';
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
    return result;
  }
}
