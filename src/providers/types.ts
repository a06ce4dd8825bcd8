/**
 * The normalized provider contract. Every adapter (OpenAI SDK, Anthropic SDK, lean OpenAI-compatible
 * transport) produces exactly these shapes, so the fallback chain, router and scorers never see a
 * provider-specific type.
 */

export type ProviderName = 'anthropic' | 'openai' | 'google' | 'deepseek' | 'openrouter' | (string & {});

export interface TargetParams {
  temperature?: number;
  maxTokens?: number;
  /** Ask for a JSON object answer (OpenAI `response_format`, Anthropic via instruction). */
  json?: boolean;
}

/** One concrete model. Written `provider:model` or as an object. */
export interface Target {
  provider: ProviderName;
  model: string;
  params?: TargetParams;
  /** Overrides the provider's configured base URL for this target only. */
  baseUrl?: string;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface CallOptions {
  /** Per-attempt timeout in milliseconds. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** When false, an answer cut off by the token limit fails the quality check. */
  allowTruncation?: boolean;
  /** Caller-supplied request id, propagated to logs and events. */
  requestId?: string;
}

export type FinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls' | 'error' | 'unknown';

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

export interface CompletionResult {
  target: Target;
  text: string;
  finishReason: FinishReason;
  usage: Usage;
  latencyMs: number;
  costUsd: number;
  /** The provider's own id for the response (e.g. `chatcmpl-...`, `msg_...`). */
  providerRequestId?: string;
  /** False when the model has no known price (`costUsd` is then 0, not a real figure). */
  costKnown?: boolean;
  /** Streams only: milliseconds from the request to the first text delta. */
  timeToFirstTokenMs?: number;
}

export type StreamEvent = { type: 'delta'; text: string } | { type: 'done'; result: CompletionResult };

/**
 * Classes a router can act on. `retryable` ones move the chain to the next target; the others stop it
 * because every target would refuse the same request.
 */
export type ErrorClass =
  | 'rate_limited'
  | 'overloaded'
  | 'server_error'
  | 'timeout'
  | 'connection'
  | 'malformed_response'
  | 'bad_request'
  | 'auth'
  | 'permission'
  | 'not_found'
  | 'content_policy'
  | 'quality_check'
  | 'circuit_open'
  | 'cancelled';

export const RETRYABLE_CLASSES: ReadonlySet<ErrorClass> = new Set<ErrorClass>([
  'rate_limited',
  'overloaded',
  'server_error',
  'timeout',
  'connection',
  'malformed_response',
  'quality_check',
  'circuit_open',
]);

export interface ProviderAdapter {
  complete(target: Target, messages: ChatMessage[], options?: CallOptions): Promise<CompletionResult>;
  stream(target: Target, messages: ChatMessage[], options?: CallOptions): AsyncIterable<StreamEvent>;
}
