/**
 * The provider layer: adapters (Anthropic SDK, OpenAI SDK, lean undici transport), the registry of
 * providers and keys, pricing, error normalization, quality checks, circuit breaker and the
 * multi-provider fallback chain.
 */
export * from './types';
export {
  ProviderError,
  ChainExhaustedError,
  describeAttempt,
  scrubSecrets,
  isProviderError,
  type Attempt,
  type ProviderErrorInit,
} from './errors';
export {
  createProviderRegistry,
  simulatorProviders,
  simulatorRegistry,
  DEFAULT_PROVIDERS,
  envPrefix,
  type ProviderConfig,
  type ProviderKind,
  type ProviderRegistry,
  type RegistryOptions,
  type ResolvedProvider,
  type SimulatorProvidersOptions,
} from './registry';
export {
  createPricing,
  defaultPricing,
  DEFAULT_PRICES,
  type ModelPrice,
  type Pricing,
  type CostEstimate,
} from './pricing';
export { createAnthropicAdapter, extractJsonText, type AnthropicAdapterOptions } from './anthropic';
export { createOpenAICompatibleAdapter, type OpenAICompatibleAdapterOptions } from './openai-compatible';
export {
  createLeanOpenAICompatibleAdapter,
  type LeanAdapterOptions,
  type LeanOpenAICompatibleAdapter,
  type RawCompletion,
} from './openai-compatible-lean';
export {
  createProviderAdapter,
  asProviderError,
  type OpenAICompatibleTransport,
  type ProviderAdaptersOptions,
  type RegistryAdapter,
} from './provider-adapter';
export { normalizeError } from './normalize-error';
export {
  PROVIDER_KINDS,
  kindDescriptor,
  providerKindNames,
  type KindAdapter,
  type KindAdapterOptions,
  type ProviderKindDescriptor,
} from './kinds';
export {
  defaultQualityCheck,
  withDefaultCheck,
  passAll,
  type QualityCheck,
  type QualityCheckContext,
  type QualityVerdict,
} from './quality-check';
export {
  CircuitBreaker,
  Permit,
  type BreakerSnapshot,
  type BreakerState,
  type CircuitBreakerOptions,
} from './circuit-breaker';
export { upstreamChatBody, wantsJson } from './openai-wire';
export {
  createFallbackChain,
  keyOf,
  type ChainResult,
  type ChainStreamEvent,
  type FallbackChain,
  type FallbackChainOptions,
  type RetryOptions,
} from './fallback-chain';
