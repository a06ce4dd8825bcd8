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
  /**
   * A larger-context fallback: skipped by ordinary failures, tried only when an earlier target refused
   * the prompt as longer than its context window (`context_length`).
   */
  contextFallback?: boolean;
}

/**
 * The caller's OpenAI chat-completions body, as the gateway received it. OpenAI-compatible targets get it
 * as written with only `model` replaced (and the target's params merged under the caller's fields); the
 * Anthropic adapter translates it field by field. `messages` in the adapter call is then only its text
 * projection (for quality checks and capture).
 */
export interface ChatRequest {
  body: OpenAIChatBody;
  /** The same body's bytes when the caller has them: spliced instead of re-serialized. */
  raw?: string;
}

export interface OpenAIChatBody {
  model: string;
  messages: unknown[];
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean | null } | null;
  [field: string]: unknown;
}

/** An assistant tool call in OpenAI's shape (`arguments` is JSON text). */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * What cancels a call: an `AbortSignal`, or anything with its abort surface (the gateway passes a
 * lighter one per request: an AbortController and its EventTarget listeners cost several µs).
 */
export interface CallerSignal {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface CallOptions {
  /** Per-attempt timeout in milliseconds: a whole JSON call, or a stream's wait for its first chunk. */
  timeoutMs?: number;
  /** Streams: the longest silence between two chunks (default `timeoutMs`). Never bounds the whole stream. */
  idleTimeoutMs?: number;
  signal?: CallerSignal;
  /** When false, an answer cut off by the token limit fails the quality check. */
  allowTruncation?: boolean;
  /** Caller-supplied request id, propagated to logs and events. */
  requestId?: string;
  /** The caller's full OpenAI body (tools, images, every parameter): see `ChatRequest`. */
  request?: ChatRequest;
  /**
   * Keep the upstream's response bytes on the result (`CompletionResult.upstream`) when the adapter has
   * them as an OpenAI chat completion (the lean OpenAI-compatible transport), for pass-through.
   */
  keepBytes?: boolean;
}

/** An upstream's response body as it came, with its content type. */
export interface UpstreamBytes {
  body: Buffer;
  contentType: string;
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
  /** The answer was (also) a call of the caller's tools: the tools are the caller's to run, never ours. */
  toolCalls?: ToolCall[];
  /** The upstream's bytes of this answer, when the call asked for them (`keepBytes`) and they exist. */
  upstream?: UpstreamBytes;
}

/**
 * `sse`: the OpenAI `chat.completion.chunk` events (`data: ...\n\n`) this delta stands for, when the
 * adapter has them (passed through from an OpenAI-compatible upstream, or translated): a gateway writes
 * them as they are, so tool-call deltas, logprobs and every other field reach the client. A delta may
 * carry no text (a tool-call delta). `sseTail` on `done`: the finish (and usage) chunks, held back until
 * the answer passed the quality check; `[DONE]` is the writer's.
 */
export type StreamEvent =
  | { type: 'delta'; text: string; sse?: string }
  | { type: 'done'; result: CompletionResult; sseTail?: string };

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
  | 'cancelled'
  /** The prompt is longer than the target's context window: only a larger-context fallback can answer. */
  | 'context_length';

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
