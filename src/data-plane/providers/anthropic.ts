import type Anthropic from '@anthropic-ai/sdk';
import { AttemptSignal, since } from './attempt';
import { ProviderError } from './errors';
import { normalizeError } from './normalize-error';
import { loadAnthropic } from './sdk-modules';
import {
  AnthropicChunkWriter,
  JSON_INSTRUCTION,
  toAnthropicRequest,
  toolCallsOf,
} from './anthropic-translate';
import { SsePassThrough, malformed, targetKey, wantsJson } from './openai-wire';
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
 * - With `options.request` (a gateway caller's whole OpenAI body), the request is translated field by
 *   field (`anthropic-translate.ts`: tools, tool results, images, stop, top_p, JSON schemas, ...), tool
 *   calls come back as OpenAI tool calls, and a stream's events as OpenAI chunks (`sse`).
 */
export interface AnthropicAdapterOptions {
  registry: ProviderRegistry;
  defaultTimeoutMs?: number;
  defaultMaxTokens?: number;
}

export { JSON_INSTRUCTION };

export function createAnthropicAdapter(options: AnthropicAdapterOptions): ProviderAdapter {
  const { registry } = options;
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 60_000;
  const defaultMaxTokens = options.defaultMaxTokens ?? 1024;
  const clients = new Map<string, { apiKey: string; client: Anthropic }>();

  // The SDK is loaded on the first Anthropic call, not with the gateway (see sdk-modules.ts).
  const clientFor = async (provider: ResolvedProvider, target: string): Promise<Anthropic> => {
    const apiKey = registry.apiKey(provider, target);
    const cacheKey = `${provider.name}\u0000${provider.baseUrl}`;
    const cached = clients.get(cacheKey);
    if (cached && cached.apiKey === apiKey) return cached.client;
    const { default: AnthropicClient } = await loadAnthropic();
    const client = new AnthropicClient({
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
    callOptions?: CallOptions,
  ): Anthropic.MessageCreateParamsNonStreaming => {
    if (callOptions?.request) return toAnthropicRequest(callOptions.request.body, target, defaultMaxTokens);
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
    // The SDK's first load is ours, not the provider's: it happens before the attempt's clock starts.
    await loadAnthropic();
    const attempt = new AttemptSignal(callOptions?.timeoutMs ?? defaultTimeoutMs, callOptions?.signal);
    const start = performance.now();
    try {
      const client = await clientFor(registry.resolve(target), key);
      const params = buildParams(target, messages, callOptions);
      const message = await client.messages.create(params, { signal: attempt.signal });
      return normalizeMessage(
        message,
        target,
        since(start),
        registry,
        wantsJson(target, callOptions?.request),
      );
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
    await loadAnthropic();
    const attempt = new AttemptSignal(
      callOptions?.timeoutMs ?? defaultTimeoutMs,
      callOptions?.signal,
      callOptions?.idleTimeoutMs,
    );
    const start = performance.now();
    let firstTokenMs: number | undefined;
    let completed = false;
    const parts: string[] = [];
    const request = callOptions?.request;
    const includeUsage = request?.body.stream_options?.include_usage === true;
    const pass = request ? new SsePassThrough(includeUsage) : undefined;
    const chunks = request ? new AnthropicChunkWriter(target.model) : undefined;
    const tools: { id: string; name: string; json: string }[] = [];
    const toolAt = new Map<number, number>();
    let id: string | undefined;
    let inputTokens = 0;
    let outputTokens = 0;
    let stopReason: FinishReason | undefined;
    let stopped = false;
    try {
      let events: AsyncIterable<Anthropic.RawMessageStreamEvent>;
      try {
        const client = await clientFor(registry.resolve(target), key);
        events = await client.messages.create(
          { ...buildParams(target, messages, callOptions), stream: true },
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
        if (chunks && pass) {
          const chunk = chunks.push(event);
          const sse = chunk ? pass.add(undefined, chunk.data, chunk.substantive) : undefined;
          if (sse !== undefined) {
            firstTokenMs ??= since(start);
            const text =
              event.type === 'content_block_delta' && event.delta.type === 'text_delta'
                ? event.delta.text
                : '';
            if (text) parts.push(text);
            yield { type: 'delta', text, sse };
          }
        }
        switch (event.type) {
          case 'message_start':
            id = event.message.id;
            inputTokens = event.message.usage?.input_tokens ?? 0;
            outputTokens = event.message.usage?.output_tokens ?? 0;
            break;
          case 'content_block_start':
            if (event.content_block.type === 'tool_use') {
              toolAt.set(event.index, tools.length);
              tools.push({ id: event.content_block.id, name: event.content_block.name, json: '' });
            }
            break;
          case 'content_block_delta':
            if (event.delta.type === 'input_json_delta') {
              const tool = tools[toolAt.get(event.index) ?? -1];
              if (tool) tool.json += event.delta.partial_json;
            } else if (!chunks && event.delta.type === 'text_delta' && event.delta.text) {
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
        text: wantsJson(target, request) ? extractJsonText(joined) : joined,
        finishReason: stopReason ?? 'unknown',
        usage,
        latencyMs: since(start),
        costUsd: cost.costUsd,
        costKnown: cost.known,
      };
      if (firstTokenMs !== undefined) result.timeToFirstTokenMs = firstTokenMs;
      if (id !== undefined) result.providerRequestId = id;
      if (tools.length > 0) {
        result.toolCalls = tools.map((t) => ({
          id: t.id,
          type: 'function',
          function: { name: t.name, arguments: t.json || '{}' },
        }));
      }
      completed = true;
      attempt.clear();
      if (chunks && pass) {
        pass.add(undefined, chunks.finish(result), false);
        const usageChunk = chunks.usage(result);
        pass.add(usageChunk.chunk, usageChunk.data, false);
        yield { type: 'done', result, sseTail: pass.tail() };
      } else yield { type: 'done', result };
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
  json: boolean,
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
    text: json ? extractJsonText(text) : text,
    finishReason: mapStopReason(body.stop_reason),
    usage,
    latencyMs,
    costUsd: cost.costUsd,
    costKnown: cost.known,
  };
  if (typeof body.id === 'string') result.providerRequestId = body.id;
  const toolCalls = toolCallsOf(body.content);
  if (toolCalls) result.toolCalls = toolCalls;
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
