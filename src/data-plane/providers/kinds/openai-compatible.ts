import { createOpenAICompatibleAdapter } from '../openai-compatible';
import { createLeanOpenAICompatibleAdapter } from '../openai-compatible-lean';
import { loadOpenAI } from '../sdk-modules';
import type { ProviderKindDescriptor } from './types';

/**
 * OpenAI chat completions: OpenAI, Gemini's OpenAI endpoint, DeepSeek, OpenRouter, vLLM and any other
 * server of that API. The lean undici transport on the hot path (the caller's body spliced, the answer's
 * bytes passed through); the `openai` SDK with `transport: 'sdk'`.
 */
export const openaiCompatible: ProviderKindDescriptor = {
  kind: 'openai-compatible',
  description: 'OpenAI chat completions (OpenAI, Gemini, DeepSeek, OpenRouter, vLLM, ...)',
  createAdapter: ({ registry, transport, defaultTimeoutMs }) =>
    transport === 'lean'
      ? createLeanOpenAICompatibleAdapter({ registry, defaultTimeoutMs })
      : createOpenAICompatibleAdapter({ registry, defaultTimeoutMs }),
  // Only the SDK transport has a module to load; the lean one is loaded with the process.
  warm: (transport) => (transport === 'sdk' ? loadOpenAI() : Promise.resolve()),
};
