import type { FinishReason } from '../providers';
import type { RouterResult } from '../router/router';
import { maskedCompletionId, type ArmMask } from './arm-mask';

/**
 * OpenAI chat-completion response shapes built from a router result. Only used when the upstream's bytes
 * cannot be passed through (a translated provider such as Anthropic, or pass-through turned off).
 * `model` is the model that answered, as OpenAI-compatible proxies report it; the route is in the
 * `x-rollout-route` header.
 */
function finishReason(reason: FinishReason): string {
  return reason === 'length' || reason === 'content_filter' || reason === 'tool_calls' ? reason : 'stop';
}

/** With `mask` (a key that may not see arms): the route as `model` and a null fingerprint (see arm-mask.ts). */
export function completionJson(result: RouterResult, mask?: ArmMask): string {
  const r = result.result;
  return JSON.stringify({
    id: maskedCompletionId(result.requestId),
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: mask ? mask.route : r.target.model,
    ...(mask ? { system_fingerprint: null } : {}),
    choices: [
      {
        index: 0,
        message: r.toolCalls?.length
          ? { role: 'assistant', content: r.text || null, tool_calls: r.toolCalls, refusal: null }
          : { role: 'assistant', content: r.text, refusal: null },
        logprobs: null,
        finish_reason: finishReason(r.finishReason),
      },
    ],
    usage: {
      prompt_tokens: r.usage.inputTokens,
      completion_tokens: r.usage.outputTokens,
      total_tokens: r.usage.inputTokens + r.usage.outputTokens,
    },
  });
}

/**
 * Server-sent `chat.completion.chunk`s. The fixed part of every chunk is built once per stream; a delta
 * costs one `JSON.stringify` of its text.
 */
export class ChunkWriter {
  private readonly head: string;

  /** `masked`: `model` is the route, and chunks carry a null fingerprint as masked upstream ones do. */
  constructor(requestId: string, model: string, masked = false) {
    this.head = `data: {"id":${JSON.stringify(maskedCompletionId(requestId))},"object":"chat.completion.chunk","created":${Math.floor(
      Date.now() / 1000,
    )},"model":${JSON.stringify(model)},${masked ? '"system_fingerprint":null,' : ''}"choices":[`;
  }

  /** The first chunk announces the role, as OpenAI's does. */
  first(text: string): string {
    return `${this.head}{"index":0,"delta":{"role":"assistant","content":${JSON.stringify(text)}},"logprobs":null,"finish_reason":null}]}\n\n`;
  }

  delta(text: string): string {
    return `${this.head}{"index":0,"delta":{"content":${JSON.stringify(text)}},"logprobs":null,"finish_reason":null}]}\n\n`;
  }

  /** Finish chunk, the usage chunk when asked for (`stream_options.include_usage`), and `[DONE]`. */
  end(result: RouterResult, includeUsage: boolean): string {
    const r = result.result;
    let out = `${this.head}{"index":0,"delta":{},"logprobs":null,"finish_reason":"${finishReason(r.finishReason)}"}]}\n\n`;
    if (includeUsage) {
      const usage = `{"prompt_tokens":${r.usage.inputTokens},"completion_tokens":${r.usage.outputTokens},"total_tokens":${
        r.usage.inputTokens + r.usage.outputTokens
      }}`;
      out += `${this.head}],"usage":${usage}}\n\n`;
    }
    return `${out}data: [DONE]\n\n`;
  }
}
