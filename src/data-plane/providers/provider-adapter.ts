import { ProviderError } from './errors';
import { kindDescriptor, providerKindNames, type KindAdapter, type ProviderKindDescriptor } from './kinds';
import { normalizeError } from './normalize-error';
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
 * to that kind's adapter, built from the kind's descriptor (kinds/<kind>.ts) on first use. `transport`
 * picks the OpenAI-compatible implementation: `'lean'` (undici; the default, for the hot path) or `'sdk'`
 * (the `openai` SDK).
 */
export type OpenAICompatibleTransport = 'lean' | 'sdk';

export interface ProviderAdaptersOptions {
  registry: ProviderRegistry;
  transport?: OpenAICompatibleTransport;
  defaultTimeoutMs?: number;
  /** The wire formats to dispatch to (default the catalog, `kinds/index.ts`), e.g. with one of your own. */
  kinds?: Readonly<Record<string, ProviderKindDescriptor>>;
}

export interface RegistryAdapter extends ProviderAdapter {
  /** The adapter for one kind. */
  forKind(kind: ProviderKind): ProviderAdapter;
  close(): Promise<void>;
}

export function createProviderAdapter(options: ProviderAdaptersOptions): RegistryAdapter {
  const { registry } = options;
  const transport = options.transport ?? 'lean';
  const adapters = new Map<ProviderKind, KindAdapter>();
  const forKind = (kind: ProviderKind): KindAdapter => {
    let adapter = adapters.get(kind);
    if (adapter) return adapter;
    const descriptor = options.kinds
      ? Object.hasOwn(options.kinds, kind)
        ? options.kinds[kind]
        : undefined
      : kindDescriptor(kind);
    if (!descriptor)
      throw new ProviderError({
        errorClass: 'not_found',
        target: kind,
        message: `provider kind "${kind}" is not one of ${(options.kinds ? Object.keys(options.kinds) : providerKindNames()).join(', ')}`,
        retryable: false,
      });
    // A kind with a pricing hook charges from its own table: a view of the registry with that table.
    const view: ProviderRegistry = descriptor.pricing
      ? Object.assign(Object.create(registry) as ProviderRegistry, {
          pricing: descriptor.pricing(registry.pricing),
        })
      : registry;
    adapter = descriptor.createAdapter({
      registry: view,
      transport,
      defaultTimeoutMs: options.defaultTimeoutMs,
    });
    adapters.set(kind, adapter);
    return adapter;
  };

  return {
    forKind,
    // A kind nothing describes fails the call (a rejection, an erroring stream), never the caller's frame.
    complete(target: Target, messages: ChatMessage[], callOptions?: CallOptions): Promise<CompletionResult> {
      try {
        return forKind(registry.kindOf(target.provider)).complete(target, messages, callOptions);
      } catch (error) {
        return Promise.reject(error as Error);
      }
    },
    stream(target: Target, messages: ChatMessage[], callOptions?: CallOptions): AsyncIterable<StreamEvent> {
      let adapter: KindAdapter;
      try {
        adapter = forKind(registry.kindOf(target.provider));
      } catch (error) {
        return {
          [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(error as Error) }),
        };
      }
      return adapter.stream(target, messages, callOptions);
    },
    async close() {
      await Promise.all([...adapters.values()].map((a) => a.close?.()));
    },
  };
}

/** Wraps any thrown value of a call on `target` as a `ProviderError` (for adapters from elsewhere). */
export function asProviderError(error: unknown, target: Target) {
  return normalizeError(error, targetKey(target));
}
