import { createAnthropicAdapter } from '../anthropic';
import { loadAnthropic } from '../sdk-modules';
import type { ProviderKindDescriptor } from './types';

/**
 * Anthropic's Messages API through `@anthropic-ai/sdk`: the caller's OpenAI body is translated field by
 * field (anthropic-translate.ts) and the answer translated back to OpenAI's shape.
 */
export const anthropic: ProviderKindDescriptor = {
  kind: 'anthropic',
  description: "Anthropic's Messages API (translated from and to OpenAI chat completions)",
  createAdapter: ({ registry, defaultTimeoutMs }) => createAnthropicAdapter({ registry, defaultTimeoutMs }),
  // The SDK is about 30 MB a gateway needs only for Anthropic targets: loaded when a route names one.
  warm: () => loadAnthropic(),
};
