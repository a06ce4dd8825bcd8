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
  /** The caller's tools (function name and parameter schema). */
  tools: { name: string; parameters: unknown }[];
  /** `auto`, `none`, `required` (Anthropic `any`), or one forced function. */
  toolChoice: 'auto' | 'none' | 'required' | { name: string };
  parallelToolCalls: boolean;
  /** Tool results at the end of the conversation (the model answers from them). */
  toolResults: string[];
  /** Images in the messages. */
  images: number;
  /** Stop sequences: the answer ends before the first one. */
  stop: string[];
  /** OpenAI `response_format: { type: 'json_schema' }`: the answer is an instance of this schema. */
  jsonSchema?: unknown;
}

export interface SimulatedToolCall {
  id: string;
  name: string;
  /** JSON text. */
  arguments: string;
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
  /** The answer is a call of these tools (no text). */
  toolCalls?: SimulatedToolCall[];
  /** The answer ended at a stop sequence. */
  stopped?: boolean;
}

/** The refusals a provider answers with an HTTP status (the other error kinds are misbehaviours). */
export type RefusalKind =
  | 'rate_limit'
  | 'server_error'
  | 'overloaded'
  | 'bad_request'
  | 'unsupported_parameter'
  | 'auth'
  | 'context_length';

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
  /** The events of a tool-call answer, between head and tail (ids, names, arguments in pieces). */
  streamToolCalls(reply: ChatReply): string[];
  streamTail(reply: ChatReply, includeUsage: boolean): string;
  /** An event whose JSON is cut off: what a `malformed` stream sends after its head. */
  streamBroken(reply: ChatReply): string;
}

/** Images among a message's content parts (OpenAI `image_url`, Anthropic `image`). */
export function countImages(content: unknown): number {
  if (!Array.isArray(content)) return 0;
  let n = 0;
  for (const part of content as { type?: unknown }[]) {
    if (part && (part.type === 'image_url' || part.type === 'image')) n++;
  }
  return n;
}

/** A stop parameter (string or list) as a list. */
export function stopList(stop: unknown): string[] {
  if (typeof stop === 'string') return stop ? [stop] : [];
  return Array.isArray(stop) ? stop.filter((s): s is string => typeof s === 'string' && s !== '') : [];
}

/** Splits a tool call's JSON arguments in a few pieces, as providers stream them. */
export function argumentPieces(args: string): string[] {
  const size = Math.max(1, Math.ceil(args.length / 3));
  const pieces: string[] = [];
  for (let i = 0; i < args.length; i += size) pieces.push(args.slice(i, i + size));
  return pieces;
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
