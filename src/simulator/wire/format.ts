/**
 * What the server needs from a wire format (OpenAI chat completions, Anthropic messages): read a
 * request into a neutral shape, and write replies, streams and errors the way that provider does, so
 * each SDK maps them onto its own result and error classes.
 */

/** A chat request, whatever wire format it came in. */
export interface ChatRequest {
  model: string;
  /** Text of every message including system prompts (for counting prompt tokens). */
  texts: string[];
  /** The last user message: how the simulator recognizes a question. */
  lastUserText: string;
  maxTokens: number | undefined;
  /** The request asked for a JSON object answer. */
  json: boolean;
  stream: boolean;
  /** OpenAI `stream_options.include_usage` (Anthropic streams always carry usage). */
  includeUsage: boolean;
}

export type ParseResult = { ok: true; request: ChatRequest } | { ok: false; reason: string };

/** A finished answer, before it is written in either format. */
export interface ChatReply {
  /** Unique per simulator; each format adds its own prefix. */
  id: string;
  model: string;
  /** Unix seconds. */
  created: number;
  text: string;
  /** The answer was cut at the request's token limit. */
  truncated: boolean;
  inputTokens: number;
  outputTokens: number;
}

/** The refusals a provider answers with an HTTP status (the other error kinds are misbehaviours). */
export type RefusalKind = 'rate_limit' | 'server_error' | 'overloaded' | 'bad_request' | 'auth';

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface WireFormat {
  name: 'openai' | 'anthropic';
  parseRequest(body: unknown): ParseResult;
  /** Header the SDK reads the request id from. */
  requestIdHeader: string;
  responseBody(reply: ChatReply): string;
  refusal(kind: RefusalKind, message: string, retryAfterSeconds: number): HttpResponse;
  /** Server-sent events, split where the server may pause or fail between them. */
  streamHead(reply: ChatReply): string;
  streamDelta(reply: ChatReply, text: string): string;
  streamTail(reply: ChatReply, includeUsage: boolean): string;
  /** An event whose JSON is cut off: what a `malformed` stream sends after its head. */
  streamBroken(reply: ChatReply): string;
}

/** The text of a message's content: a plain string or a list of typed parts (text parts kept). */
export function contentText(content: unknown): string | undefined {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return undefined;
  return content
    .map((part: unknown) =>
      part !== null && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string'
        ? (part as { text: string }).text
        : '',
    )
    .join('');
}

/**
 * Providers without a JSON mode (Anthropic) are asked for JSON by instruction; a system prompt that
 * mentions JSON counts as asking, on either wire format.
 */
export function systemAsksForJson(systemTexts: readonly string[]): boolean {
  return systemTexts.some((text) => /\bJSON\b/.test(text));
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function serverSentEvent(data: unknown, event?: string): string {
  const payload = typeof data === 'string' ? data : JSON.stringify(data);
  return event ? `event: ${event}\ndata: ${payload}\n\n` : `data: ${payload}\n\n`;
}
