import type OpenAI from 'openai';
import { AttemptSignal, since } from './attempt';
import { normalizeError } from './normalize-error';
import { loadOpenAI } from './sdk-modules';
import {
  ChatStreamAccumulator,
  SsePassThrough,
  buildChatBody,
  normalizeChatCompletion,
  targetKey,
  upstreamChatBody,
} from './openai-wire';
import type { ProviderRegistry, ResolvedProvider } from './registry';
import type {
  CallOptions,
  ChatMessage,
  CompletionResult,
  ProviderAdapter,
  StreamEvent,
  Target,
} from './types';

/**
 * OpenAI-compatible adapter on the `openai` SDK: OpenAI, Gemini (OpenAI endpoint), DeepSeek,
 * OpenRouter, vLLM. The SDK never retries (`maxRetries: 0`; the fallback chain decides) and never
 * logs (`logLevel: 'off'`). The per-attempt timeout is our own AbortSignal, because the SDK's
 * `timeout` only covers the wait for response headers.
 *
 * For the gateway's hot path see `openai-compatible-lean.ts` (same results, same error classes,
 * a fraction of the CPU).
 */
export interface OpenAICompatibleAdapterOptions {
  registry: ProviderRegistry;
  /** Used when a call passes no `timeoutMs`. Default 60 s. */
  defaultTimeoutMs?: number;
}

interface CachedClient {
  apiKey: string;
  client: OpenAI;
}

export function createOpenAICompatibleAdapter(options: OpenAICompatibleAdapterOptions): ProviderAdapter {
  const { registry } = options;
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 60_000;
  // One client per (provider, baseUrl); rebuilt if the key in the env changes.
  const clients = new Map<string, CachedClient>();

  // The SDK is loaded on the first call, not with the process (see sdk-modules.ts).
  const clientFor = async (provider: ResolvedProvider, target: string): Promise<OpenAI> => {
    const apiKey = registry.apiKey(provider, target);
    const cacheKey = `${provider.name}\u0000${provider.baseUrl}`;
    const cached = clients.get(cacheKey);
    if (cached && cached.apiKey === apiKey) return cached.client;
    const { default: OpenAIClient } = await loadOpenAI();
    const client = new OpenAIClient({
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

  async function complete(
    target: Target,
    messages: ChatMessage[],
    callOptions?: CallOptions,
  ): Promise<CompletionResult> {
    const key = targetKey(target);
    // The SDK's first load is ours, not the provider's: it happens before the attempt's clock starts.
    await loadOpenAI();
    const attempt = new AttemptSignal(callOptions?.timeoutMs ?? defaultTimeoutMs, callOptions?.signal);
    const start = performance.now();
    try {
      const client = await clientFor(registry.resolve(target), key);
      const body = callOptions?.request
        ? JSON.parse(upstreamChatBody(target, callOptions.request, false))
        : buildChatBody(target, messages, false);
      const json = await client.chat.completions.create(
        body as OpenAI.ChatCompletionCreateParamsNonStreaming,
        {
          signal: attempt.signal,
        },
      );
      return normalizeChatCompletion(json, target, since(start), registry.pricing);
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
    await loadOpenAI();
    const attempt = new AttemptSignal(
      callOptions?.timeoutMs ?? defaultTimeoutMs,
      callOptions?.signal,
      callOptions?.idleTimeoutMs,
    );
    const start = performance.now();
    let firstTokenMs: number | undefined;
    let completed = false;
    const acc = new ChatStreamAccumulator(target, registry.pricing);
    const request = callOptions?.request;
    const pass = request
      ? new SsePassThrough(request.body.stream_options?.include_usage === true)
      : undefined;
    try {
      let chunks: AsyncIterable<unknown>;
      try {
        const client = await clientFor(registry.resolve(target), key);
        const body = request
          ? JSON.parse(upstreamChatBody(target, request, true))
          : buildChatBody(target, messages, true);
        chunks = await client.chat.completions.create(body as OpenAI.ChatCompletionCreateParamsStreaming, {
          signal: attempt.signal,
        });
      } catch (error) {
        throw normalizeError(error, key, attempt);
      }
      const iterator = chunks[Symbol.asyncIterator]();
      while (true) {
        let next: IteratorResult<unknown>;
        try {
          next = await iterator.next();
        } catch (error) {
          throw normalizeError(error, key, attempt);
        }
        if (next.done) break;
        attempt.touch();
        const text = acc.push(next.value);
        if (pass) {
          const sse = pass.add(next.value, JSON.stringify(next.value), acc.substantive);
          if (sse !== undefined) {
            firstTokenMs ??= since(start);
            yield { type: 'delta', text, sse };
          }
        } else if (text) {
          firstTokenMs ??= since(start);
          yield { type: 'delta', text };
        }
      }
      // The SDK ends its iterator silently when the request is aborted: decide why it ended.
      if (attempt.timedOut || attempt.cancelled) throw normalizeError(new Error('aborted'), key, attempt);
      const result = acc.finish(since(start), firstTokenMs);
      completed = true;
      attempt.clear();
      yield pass ? { type: 'done', result, sseTail: pass.tail() } : { type: 'done', result };
    } finally {
      attempt.clear();
      // Consumer stopped early (or we threw): make sure the HTTP request does not run on.
      if (!completed && !attempt.signal.aborted) attempt.controller.abort();
    }
  }

  return { complete, stream };
}
