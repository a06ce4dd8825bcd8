import type { ChatMessage } from '../providers';
import { invalidBody } from './errors';

/**
 * Request bodies the gateway accepts. Chat completions: the whole OpenAI surface. The gateway checks only
 * the fields it reads itself (`model`, the message roles, `stream`, `user`, `metadata`); every other field
 * (tools, images, `response_format`, `stop`, `seed`, `top_p`, `logprobs`, ...) goes upstream as the caller
 * wrote it, and the upstream, or the Anthropic translation, judges it. Nothing is dropped.
 *
 * Checked by hand rather than with zod: a handful of fields, on the request path, and zod alone would add
 * ~15 MB to a gateway process that has no other use for it. Errors name the field in OpenAI's dotted form
 * (`messages.0.role`).
 */
export interface ChatCompletionBody {
  model: string;
  messages: { role: string }[];
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean | null } | null;
  user?: string | null;
  metadata?: Record<string, string> | null;
}

// `developer` is OpenAI's newer name for `system`; `function` the legacy name of `tool`.
const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

const fail = (param: string, reason: string): never => {
  throw invalidBody(`${param}: ${reason}`, param);
};
const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);
const optional = (v: unknown, type: string, param: string) => {
  if (v !== undefined && v !== null && typeof v !== type) fail(param, `expected ${type}`);
};

/** The body as a chat completion request, or a 400 naming the first offending field. */
export function readChatCompletion(body: unknown): ChatCompletionBody {
  if (!isObject(body)) return fail('body', 'expected a JSON object');
  const { model, messages, stream_options: streamOptions, metadata } = body;
  if (typeof model !== 'string' || model.length === 0 || model.length > 200)
    fail('model', 'required: the route name (a string of 1-200 characters)');
  if (!Array.isArray(messages) || messages.length === 0)
    fail('messages', 'required: a non-empty array of messages');
  for (let i = 0; i < (messages as unknown[]).length; i++) {
    const m = (messages as unknown[])[i];
    if (!isObject(m)) fail(`messages.${i}`, 'expected an object');
    else if (typeof m.role !== 'string' || !ROLES.has(m.role))
      fail(`messages.${i}.role`, `expected one of ${[...ROLES].join(', ')}`);
  }
  optional(body.stream, 'boolean', 'stream');
  if (streamOptions !== undefined && streamOptions !== null) {
    if (!isObject(streamOptions)) fail('stream_options', 'expected an object');
    else optional(streamOptions.include_usage, 'boolean', 'stream_options.include_usage');
  }
  optional(body.user, 'string', 'user');
  if (typeof body.user === 'string' && body.user.length > 256) fail('user', 'at most 256 characters');
  if (metadata !== undefined && metadata !== null) {
    if (!isObject(metadata)) fail('metadata', 'expected an object of strings');
    else
      for (const key in metadata) {
        const value = metadata[key];
        if (typeof value !== 'string' || value.length > 512)
          fail(`metadata.${key}`, 'expected a string of at most 512 characters');
      }
  }
  return body as unknown as ChatCompletionBody;
}

export interface FeedbackBody {
  request_id: string;
  score?: number;
  thumbs?: 'up' | 'down';
  comment?: string;
}

export function readFeedback(body: unknown): FeedbackBody {
  if (!isObject(body)) return fail('body', 'expected a JSON object');
  const { request_id: requestId, score, thumbs, comment } = body;
  if (typeof requestId !== 'string' || requestId.length === 0 || requestId.length > 200)
    fail('request_id', 'required: the x-request-id of the answer (1-200 characters)');
  if (score !== undefined && (typeof score !== 'number' || !(score >= 1 && score <= 5)))
    fail('score', 'expected a number from 1 to 5');
  if (thumbs !== undefined && thumbs !== 'up' && thumbs !== 'down') fail('thumbs', 'expected "up" or "down"');
  if (comment !== undefined && (typeof comment !== 'string' || comment.length > 4000))
    fail('comment', 'expected a string of at most 4000 characters');
  if (score === undefined && thumbs === undefined)
    throw invalidBody('give a score (1-5) or thumbs ("up"/"down")');
  return body as unknown as FeedbackBody;
}

/**
 * The conversation as text, for what reads text (captured prompts, judges, custom quality checks): text
 * parts joined, an image as `[image]`, tool calls and results spelled out. The request itself goes
 * upstream whole.
 */
export function toMessages(messages: readonly unknown[]): ChatMessage[] {
  const out: ChatMessage[] = new Array(messages.length);
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i] as { role: string; content?: unknown; tool_calls?: unknown; name?: unknown };
    let content = textOf(m.content);
    if (Array.isArray(m.tool_calls)) {
      for (const call of m.tool_calls as { function?: { name?: unknown; arguments?: unknown } }[]) {
        content += `${content ? '\n' : ''}[tool call] ${String(call.function?.name)}(${String(call.function?.arguments ?? '')})`;
      }
    }
    const role = m.role;
    if (role === 'tool' || role === 'function')
      out[i] = { role: 'user', content: `[tool result] ${content}` };
    else out[i] = { role: role === 'developer' ? 'system' : (role as ChatMessage['role']), content };
  }
  return out;
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content as { type?: unknown; text?: unknown }[]) {
    if (part && typeof part.text === 'string') text += part.text;
    else if (part && (part.type === 'image_url' || part.type === 'input_image')) text += '[image]';
  }
  return text;
}
