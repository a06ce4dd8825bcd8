import { wantsJson } from './openai-wire';
import type { CallOptions, ChatMessage, CompletionResult } from './types';

/**
 * The quality gate of the fallback chain: an answer that fails it is treated like a provider failure
 * and the chain moves on to the next target. The default is cheap and synchronous; a custom check may
 * be async (e.g. a schema validator or a small judge), at the cost of its own latency on every call.
 */
export type QualityVerdict = { ok: true } | { ok: false; reason: string };

export interface QualityCheckContext {
  messages: ChatMessage[];
  options?: CallOptions;
}

export type QualityCheck = (
  result: CompletionResult,
  context: QualityCheckContext,
) => QualityVerdict | Promise<QualityVerdict>;

const OK: QualityVerdict = Object.freeze({ ok: true }) as QualityVerdict;

/**
 * - the answer is not empty (whitespace only counts as empty), unless it is a call of the caller's tools;
 * - every tool call names a function and carries JSON arguments;
 * - it was not cut off by the token limit, when the caller set `allowTruncation: false`;
 * - its text is valid JSON when JSON was asked for (`params.json`, or the caller's `response_format`).
 */
export function defaultQualityCheck(result: CompletionResult, context: QualityCheckContext): QualityVerdict {
  const text = result.text;
  const tools = result.toolCalls;
  if (tools && tools.length > 0) {
    for (const call of tools) {
      if (!call.function?.name) return { ok: false, reason: 'tool call without a function name' };
      try {
        JSON.parse(call.function.arguments || '{}');
      } catch {
        return { ok: false, reason: `tool call "${call.function.name}" has arguments that are not JSON` };
      }
    }
    if (text.trim().length === 0) return truncated(result, context) ?? OK;
  }
  if (text.length === 0 || text.trim().length === 0) return { ok: false, reason: 'empty answer' };
  const cut = truncated(result, context);
  if (cut) return cut;
  if (wantsJson(result.target, context.options?.request)) {
    try {
      JSON.parse(text);
    } catch (error) {
      return { ok: false, reason: `answer is not valid JSON: ${(error as Error).message}` };
    }
  }
  return OK;
}

function truncated(result: CompletionResult, context: QualityCheckContext): QualityVerdict | undefined {
  if (context.options?.allowTruncation === false && result.finishReason === 'length') {
    return { ok: false, reason: 'answer truncated by the token limit (finish reason "length")' };
  }
  return undefined;
}

/** Runs the default check, then `custom` (if the default passes). */
export function withDefaultCheck(custom: QualityCheck): QualityCheck {
  return (result, context) => {
    const verdict = defaultQualityCheck(result, context);
    return verdict.ok ? custom(result, context) : verdict;
  };
}

export const passAll: QualityCheck = () => OK;
