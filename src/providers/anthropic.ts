import Anthropic from '@anthropic-ai/sdk';
import { AttemptSignal, since } from './attempt';
import { ProviderError } from './errors';
import { normalizeError } from './normalize-error';
import { malformed, targetKey } from './openai-wire';
import type { ProviderRegistry, ResolvedProvider } from './registry';
import type {
  CallOptions,
  ChatMessage,
  CompletionResult,
  FinishReason,
  ProviderAdapter,
  StreamEvent,
  Target,
  Usage,
} from './types';

/**
 * Anthropic Messages API adapter on `@anthropic-ai/sdk`.
 *
 * - System messages become the `system` parameter (joined by blank lines); the rest go as messages.
 * - `max_tokens` is mandatory for Anthropic: `params.maxTokens`, else `defaultMaxTokens` (1024).
 * - JSON mode: Anthropic has no `response_format`, so an instruction is added to the system prompt and
 *   the answer is parsed without prefilling `{` (prefill breaks on models that refuse it and hides
 *   the model's own opening): code fences and stray prose around the outermost object are stripped,
 *   so `result.text` is the JSON text when one is found. The quality check validates it.
 * - No SDK retries, no SDK logging; per-attempt timeout via our own AbortSignal.
 */
export interface AnthropicAdapterOptions {
  registry: ProviderRegistry;
  defaultTimeoutMs?: number;
  defaultMaxTokens?: number;
}

export const JSON_INSTRUCTION =
  'Respond with a single valid JSON object and nothing else: no prose before or after it, no markdown code fences.';

export function createAnthropicAdapter(options: AnthropicAdapterOptions): ProviderAdapter {
  const { registry } = options;
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 60_000;
  const defaultMaxTokens = options.defaultMaxTokens ?? 1024;
  const clients = new Map<string, { apiKey: string; client: Anthropic }>();

  const clientFor = (provider: ResolvedProvider, target: string): Anthropic => {
    const apiKey = registry.apiKey(provider, target);
    const cacheKey = `${provider.name}\u0000${provider.baseUrl}`;
    const cached = clients.get(cacheKey);
    if (cached && cached.apiKey === apiKey) return cached.client;
    const client = new Anthropic({
      apiKey,
      baseURL: provider.baseUrl,
      maxRetries: 0,
      timeout: 10 * 60_000,
      logLevel: 'off',
      defaultHeaders: provider.defaultHeaders,
    });
    clients.set(cacheKey, { apiKey, client });
    return client;
  };

  const buildParams = (
    target: Target,
    messages: ChatMessage[],
  ): Anthropic.MessageCreateParamsNonStreaming => {
    const system: string[] = [];
    const turns: Anthropic.MessageParam[] = [];
    for (const message of messages) {
      if (message.role === 'system') system.push(message.content);
      else turns.push({ role: message.role, content: message.content });
    }
    const params = target.params;
    if (params?.json) system.push(JSON_INSTRUCTION);
    const body: Anthropic.MessageCreateParamsNonStreaming = {
      model: target.model,
      max_tokens: params?.maxTokens ?? defaultMaxTokens,
      messages: turns,
    };
    if (system.length > 0) body.system = system.join('\n\n');
    // Anthropic accepts 0..1; targets allow OpenAI's 0..2, so clamp rather than fail the request.
    if (params?.temperature !== undefined) body.temperature = Math.min(1, params.temperature);
    return body;
  };

  async function complete(
    target: Target,
    messages: ChatMessage[],
    callOptions?: CallOptions,
  ): Promise<CompletionResult> {
    const key = targetKey(target);
    const attempt = new AttemptSignal(callOptions?.timeoutMs ?? defaultTimeoutMs, callOptions?.signal);
    const start = performance.now();
    try {
      const client = clientFor(registry.resolve(target), key);
      const message = await client.messages.create(buildParams(target, messages), { signal: attempt.signal });
      return normalizeMessage(message, target, since(start), registry);
    } catch (error) {
      throw normalizeError(error, key, attempt);
    } finally {
      attempt.clear();
    }
  }

  async function* stream(
    target: Target,
    messages: ChatMessage[],
    callOptions?: CallOptions,
  ): AsyncGenerator<StreamEvent> {
    const key = targetKey(target);
    const attempt = new AttemptSignal(callOptions?.timeoutMs ?? defaultTimeoutMs, callOptions?.signal);
    const start = performance.now();
    let firstTokenMs: number | undefined;
    let completed = false;
    const parts: string[] = [];
    let id: string | undefined;
    let inputTokens = 0;
    let outputTokens = 0;
    let stopReason: FinishReason | undefined;
    let stopped = false;
    try {
      let events: AsyncIterable<Anthropic.RawMessageStreamEvent>;
      try {
        const client = clientFor(registry.resolve(target), key);
        events = await client.messages.create(
          { ...buildParams(target, messages), stream: true },
          { signal: attempt.signal },
        );
      } catch (error) {
        throw normalizeError(error, key, attempt);
      }
      const iterator = events[Symbol.asyncIterator]();
      while (true) {
        let next: IteratorResult<Anthropic.RawMessageStreamEvent>;
        try {
          next = await iterator.next();
        } catch (error) {
          throw normalizeError(error, key, attempt);
        }
        if (next.done) break;
        attempt.touch();
        const event = next.value;
        switch (event.type) {
          case 'message_start':
            id = event.message.id;
            inputTokens = event.message.usage?.input_tokens ?? 0;
            outputTokens = event.message.usage?.output_tokens ?? 0;
            break;
          case 'content_block_delta':
            if (event.delta.type === 'text_delta' && event.delta.text) {
              parts.push(event.delta.text);
              firstTokenMs ??= since(start);
              yield { type: 'delta', text: event.delta.text };
            }
            break;
          case 'message_delta':
            if (event.delta.stop_reason) stopReason = mapStopReason(event.delta.stop_reason);
            if (event.usage?.output_tokens !== undefined && event.usage.output_tokens !== null) {
              outputTokens = event.usage.output_tokens;
            }
            if (typeof event.usage?.input_tokens === 'number') inputTokens = event.usage.input_tokens;
            break;
          case 'message_stop':
            stopped = true;
            break;
          default:
            break;
        }
      }
      if (attempt.timedOut || attempt.cancelled) throw normalizeError(new Error('aborted'), key, attempt);
      if (!stopped) {
        throw new ProviderError({
          errorClass: 'connection',
          target: key,
          message: 'stream ended before the answer was complete (no message_stop)',
        });
      }
      const usage: Usage = { inputTokens, outputTokens };
      const cost = registry.pricing.cost(target.model, usage);
      const joined = parts.join('');
      const result: CompletionResult = {
        target,
        text: target.params?.json ? extractJsonText(joined) : joined,
        finishReason: stopReason ?? 'unknown',
        usage,
        latencyMs: since(start),
        costUsd: cost.costUsd,
        costKnown: cost.known,
      };
      if (firstTokenMs !== undefined) result.timeToFirstTokenMs = firstTokenMs;
      if (id !== undefined) result.providerRequestId = id;
      completed = true;
      attempt.clear();
      yield { type: 'done', result };
    } finally {
      attempt.clear();
      if (!completed && !attempt.signal.aborted) attempt.controller.abort();
    }
  }

  return { complete, stream };
}

function normalizeMessage(
  message: unknown,
  target: Target,
  latencyMs: number,
  registry: ProviderRegistry,
): CompletionResult {
  const body = message as Partial<Anthropic.Message> | null;
  if (!body || typeof body !== 'object' || !Array.isArray(body.content)) {
    throw malformed(target, 'response has no content array');
  }
  let text = '';
  for (const block of body.content) if (block && block.type === 'text') text += block.text;
  const usage: Usage = {
    inputTokens: body.usage?.input_tokens ?? 0,
    outputTokens: body.usage?.output_tokens ?? 0,
  };
  const cost = registry.pricing.cost(target.model, usage);
  const result: CompletionResult = {
    target,
    text: target.params?.json ? extractJsonText(text) : text,
    finishReason: mapStopReason(body.stop_reason),
    usage,
    latencyMs,
    costUsd: cost.costUsd,
    costKnown: cost.known,
  };
  if (typeof body.id === 'string') result.providerRequestId = body.id;
  return result;
}

export function mapStopReason(reason: unknown): FinishReason {
  switch (reason) {
    case 'end_turn':
    case 'stop_sequence':
    case 'pause_turn':
      return 'stop';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return 'unknown';
  }
}

/**
 * The JSON object in an answer that was asked for JSON: the text itself when it parses, else the
 * content of a ```json fence, else the outermost `{...}`; the original text when none parses.
 */
export function extractJsonText(text: string): string {
  const trimmed = text.trim();
  if (trimmed.startsWith('{') && trimmed.endsWith('}') && parses(trimmed)) return trimmed;
  const fence = /```(?:json)?\s*([\s\S]*?)```/i.exec(trimmed);
  if (fence && parses(fence[1].trim())) return fence[1].trim();
  const first = trimmed.indexOf('{');
  const last = trimmed.lastIndexOf('}');
  if (first >= 0 && last > first) {
    const candidate = trimmed.slice(first, last + 1);
    if (parses(candidate)) return candidate;
  }
  return text;
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
