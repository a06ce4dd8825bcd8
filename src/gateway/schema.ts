import { z } from 'zod';
import type { ChatMessage } from '../providers';

/**
 * Request bodies the gateway accepts. Chat completions: the whole OpenAI surface. The gateway checks only
 * the fields it reads itself (`model`, the message roles, `stream`, `user`, `metadata`); every other field
 * (tools, images, `response_format`, `stop`, `seed`, `top_p`, `logprobs`, ...) goes upstream as the caller
 * wrote it, and the upstream, or the Anthropic translation, judges it. Nothing is dropped.
 */
const message = z.looseObject({
  // `developer` is OpenAI's newer name for `system`; `function` the legacy name of `tool`.
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
});

export const chatCompletionBody = z.looseObject({
  model: z.string().min(1).max(200),
  messages: z.array(message).min(1),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  user: z.string().max(256).nullish(),
  metadata: z.record(z.string(), z.string().max(512)).nullish(),
});

export type ChatCompletionBody = z.infer<typeof chatCompletionBody>;

export const feedbackBody = z
  .object({
    request_id: z.string().min(1).max(200),
    score: z.number().min(1).max(5).optional(),
    thumbs: z.enum(['up', 'down']).optional(),
    comment: z.string().max(4000).optional(),
  })
  .refine((b) => b.score !== undefined || b.thumbs !== undefined, {
    error: 'give a score (1-5) or thumbs ("up"/"down")',
  });

export type FeedbackBody = z.infer<typeof feedbackBody>;

/** The first issue as `(message, param)`, with the path in OpenAI's dotted form (`messages.0.role`). */
export function describeIssue(error: z.ZodError): { message: string; param: string | null } {
  const issue = error.issues[0];
  const param = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : null;
  const message = issue ? (param ? `${param}: ${issue.message}` : issue.message) : 'invalid request body';
  return {
    message: error.issues.length > 1 ? `${message} (and ${error.issues.length - 1} more)` : message,
    param,
  };
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
