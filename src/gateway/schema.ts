import { z } from 'zod';
import type { ChatMessage, TargetParams } from '../providers';

/**
 * Request bodies the gateway accepts. Chat completions: the OpenAI shape, restricted to what the provider
 * layer can honour (text messages, temperature, max tokens, JSON mode, one choice). Fields it cannot honour
 * are refused rather than silently ignored; unknown fields are ignored as OpenAI-compatible servers do.
 */
const textPart = z.object({ type: z.literal('text'), text: z.string() });

const message = z.object({
  // `developer` is OpenAI's newer name for `system`.
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(textPart).min(1)]),
  name: z.string().optional(),
});

const unsupported = (what: string) =>
  z.never({ error: `${what} is not supported by this gateway` }).optional();

export const chatCompletionBody = z.object({
  model: z.string().min(1).max(200),
  messages: z.array(message).min(1),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  response_format: z.object({ type: z.enum(['text', 'json_object']) }).nullish(),
  n: z.literal(1, { error: 'only n = 1 is supported' }).nullish(),
  user: z.string().max(256).nullish(),
  metadata: z.record(z.string(), z.string().max(512)).nullish(),
  tools: unsupported('tools'),
  functions: unsupported('functions'),
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

export function toMessages(body: ChatCompletionBody): ChatMessage[] {
  const out: ChatMessage[] = new Array(body.messages.length);
  for (let i = 0; i < body.messages.length; i++) {
    const m = body.messages[i];
    const content = typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join('');
    out[i] = { role: m.role === 'developer' ? 'system' : m.role, content };
  }
  return out;
}

/** The caller's parameters, or undefined when none were given (the common case: no allocation). */
export function toParams(body: ChatCompletionBody): TargetParams | undefined {
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  const json = body.response_format?.type === 'json_object';
  if (body.temperature == null && maxTokens == null && !json) return undefined;
  const params: TargetParams = {};
  if (body.temperature != null) params.temperature = body.temperature;
  if (maxTokens != null) params.maxTokens = maxTokens;
  if (json) params.json = true;
  return params;
}
