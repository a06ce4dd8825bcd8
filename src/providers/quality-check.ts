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
 * - the answer is not empty (whitespace only counts as empty);
 * - it was not cut off by the token limit, when the caller set `allowTruncation: false`;
 * - it is valid JSON when the target asked for JSON (`params.json`).
 */
export function defaultQualityCheck(result: CompletionResult, context: QualityCheckContext): QualityVerdict {
  const text = result.text;
  if (text.length === 0 || text.trim().length === 0) return { ok: false, reason: 'empty answer' };
  if (context.options?.allowTruncation === false && result.finishReason === 'length') {
    return { ok: false, reason: 'answer truncated by the token limit (finish reason "length")' };
  }
  if (result.target.params?.json) {
    try {
      JSON.parse(text);
    } catch (error) {
      return { ok: false, reason: `answer is not valid JSON: ${(error as Error).message}` };
    }
  }
  return OK;
}

/** Runs the default check, then `custom` (if the default passes). */
export function withDefaultCheck(custom: QualityCheck): QualityCheck {
  return (result, context) => {
    const verdict = defaultQualityCheck(result, context);
    return verdict.ok ? custom(result, context) : verdict;
  };
}

export const passAll: QualityCheck = () => OK;
