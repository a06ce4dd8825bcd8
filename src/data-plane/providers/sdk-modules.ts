import type * as AnthropicSdk from '@anthropic-ai/sdk';
import type * as OpenAISdk from 'openai';

/**
 * The provider SDKs, loaded on first use: together they hold ~40 MB of a gateway process that serves only
 * OpenAI-compatible targets through the lean transport and never needs them. `loaded` is what error
 * normalization checks `instanceof` against (an SDK that was never loaded threw nothing).
 */
export const loaded: { openai?: typeof OpenAISdk; anthropic?: typeof AnthropicSdk } = {};

let openai: Promise<typeof OpenAISdk> | undefined;
let anthropic: Promise<typeof AnthropicSdk> | undefined;

export function loadOpenAI(): Promise<typeof OpenAISdk> {
  return (openai ??= import('openai').then((m) => (loaded.openai = m)));
}

export function loadAnthropic(): Promise<typeof AnthropicSdk> {
  return (anthropic ??= import('@anthropic-ai/sdk').then((m) => (loaded.anthropic = m)));
}
