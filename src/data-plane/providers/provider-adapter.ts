import { createAnthropicAdapter } from './anthropic';
import { normalizeError } from './normalize-error';
import { createOpenAICompatibleAdapter } from './openai-compatible';
import {
  createLeanOpenAICompatibleAdapter,
  type LeanOpenAICompatibleAdapter,
} from './openai-compatible-lean';
import { targetKey } from './openai-wire';
import type { ProviderKind, ProviderRegistry } from './registry';
import type {
  CallOptions,
  ChatMessage,
  CompletionResult,
  ProviderAdapter,
  StreamEvent,
  Target,
} from './types';

/**
 * One `ProviderAdapter` for every provider in a registry: dispatches each target by its provider's kind
 * to the Anthropic adapter or to an OpenAI-compatible one. `transport` picks the OpenAI-compatible
 * implementation: `'lean'` (undici; the default, for the hot path) or `'sdk'` (the `openai` SDK).
 */
export type OpenAICompatibleTransport = 'lean' | 'sdk';

export interface ProviderAdaptersOptions {
  registry: ProviderRegistry;
  transport?: OpenAICompatibleTransport;
  defaultTimeoutMs?: number;
}

export interface RegistryAdapter extends ProviderAdapter {
  /** The adapter for one kind (e.g. to reach `completeRaw` on the lean one). */
  forKind(kind: ProviderKind): ProviderAdapter;
  /** The lean adapter when `transport` is 'lean'. */
  readonly lean?: LeanOpenAICompatibleAdapter;
  close(): Promise<void>;
}

export function createProviderAdapter(options: ProviderAdaptersOptions): RegistryAdapter {
  const { registry } = options;
  const anthropic = createAnthropicAdapter({ registry, defaultTimeoutMs: options.defaultTimeoutMs });
  const lean =
    (options.transport ?? 'lean') === 'lean'
      ? createLeanOpenAICompatibleAdapter({ registry, defaultTimeoutMs: options.defaultTimeoutMs })
      : undefined;
  const openai: ProviderAdapter =
    lean ?? createOpenAICompatibleAdapter({ registry, defaultTimeoutMs: options.defaultTimeoutMs });
  const forKind = (kind: ProviderKind): ProviderAdapter => (kind === 'anthropic' ? anthropic : openai);

  return {
    lean,
    forKind,
    complete(target: Target, messages: ChatMessage[], callOptions?: CallOptions): Promise<CompletionResult> {
      return forKind(registry.kindOf(target.provider)).complete(target, messages, callOptions);
    },
    stream(target: Target, messages: ChatMessage[], callOptions?: CallOptions): AsyncIterable<StreamEvent> {
      return forKind(registry.kindOf(target.provider)).stream(target, messages, callOptions);
    },
    async close() {
      await lean?.close();
    },
  };
}

/** Wraps any thrown value of a call on `target` as a `ProviderError` (for adapters from elsewhere). */
export function asProviderError(error: unknown, target: Target) {
  return normalizeError(error, targetKey(target));
}
