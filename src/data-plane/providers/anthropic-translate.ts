import type Anthropic from '@anthropic-ai/sdk';
import { ProviderError } from './errors';
import { targetKey } from './openai-wire';
import type { CompletionResult, OpenAIChatBody, Target, ToolCall } from './types';

/**
 * OpenAI chat-completions requests → Anthropic Messages requests, field by field (as LiteLLM and Portkey
 * translate them), and Anthropic stream events → OpenAI `chat.completion.chunk`s.
 *
 * What has no Anthropic equivalent is refused with a `bad_request` naming the field, never dropped:
 * a request that behaves differently behind the gateway than without it is worse than a clear 400.
 * Two deliberate exceptions, both without effect on the answer: a message's `name` (Anthropic has no
 * participant names) and the gateway's own `metadata`. `temperature` above Anthropic's 1 is clamped.
 */

export const JSON_INSTRUCTION =
  'Respond with a single valid JSON object and nothing else: no prose before or after it, no markdown code fences.';

/** Fields translated below (or harmless: `stream_options` is the adapter's, `metadata` the gateway's). */
const TRANSLATED = new Set([
  'model',
  'messages',
  'stream',
  'stream_options',
  'metadata',
  'user',
  'n',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'stop',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'response_format',
]);

type Block = Anthropic.ContentBlockParam;

export function toAnthropicRequest(
  body: OpenAIChatBody,
  target: Target,
  defaultMaxTokens: number,
): Anthropic.MessageCreateParamsNonStreaming {
  const refuse = (field: string, reason: string): never => {
    throw new ProviderError({
      errorClass: 'bad_request',
      target: targetKey(target),
      message: `${field}: ${reason} (the request cannot be translated for Anthropic)`,
    });
  };
  for (const field in body) {
    if (!TRANSLATED.has(field) && body[field] !== null && body[field] !== undefined)
      refuse(field, 'has no Anthropic equivalent');
  }
  if (body.n != null && body.n !== 1) refuse('n', 'Anthropic returns one choice; only n = 1 works');

  const system: string[] = [];
  const turns: Anthropic.MessageParam[] = [];
  const push = (role: 'user' | 'assistant', blocks: Block[]) => {
    const last = turns[turns.length - 1];
    // Anthropic wants alternating turns: consecutive messages of one role (tool results) become one turn.
    if (last && last.role === role) (last.content as Block[]).push(...blocks);
    else turns.push({ role, content: blocks });
  };
  body.messages.forEach((raw, i) => {
    const at = `messages.${i}`;
    if (!raw || typeof raw !== 'object') refuse(at, 'must be an object');
    const m = raw as Record<string, unknown>;
    switch (m.role) {
      case 'system':
      case 'developer':
        system.push(textOnly(m.content, `${at}.content`, refuse));
        return;
      case 'user':
        push('user', userBlocks(m.content, `${at}.content`, refuse));
        return;
      case 'assistant': {
        const blocks: Block[] = [];
        if (m.content != null) {
          const text = textOnly(m.content, `${at}.content`, refuse);
          if (text) blocks.push({ type: 'text', text });
        }
        if (m.tool_calls != null) {
          if (!Array.isArray(m.tool_calls)) refuse(`${at}.tool_calls`, 'must be a list');
          (m.tool_calls as unknown[]).forEach((c, j) =>
            blocks.push(toolUse(c, `${at}.tool_calls.${j}`, refuse)),
          );
        }
        if (m.function_call != null)
          refuse(`${at}.function_call`, 'legacy function calls are not translated; use tool_calls');
        if (blocks.length === 0) refuse(at, 'an assistant message needs content or tool_calls');
        push('assistant', blocks);
        return;
      }
      case 'tool': {
        if (typeof m.tool_call_id !== 'string') refuse(`${at}.tool_call_id`, 'is required');
        const content = textOnly(m.content, `${at}.content`, refuse);
        push('user', [{ type: 'tool_result', tool_use_id: m.tool_call_id as string, content }]);
        return;
      }
      default:
        refuse(`${at}.role`, `"${String(m.role)}" has no Anthropic equivalent`);
    }
  });

  const format = body.response_format as { type?: unknown; json_schema?: { schema?: unknown } } | null;
  if (format != null) {
    if (format.type === 'json_object') system.push(JSON_INSTRUCTION);
    else if (format.type === 'json_schema')
      system.push(
        `${JSON_INSTRUCTION} It must match this JSON schema: ${JSON.stringify(format.json_schema?.schema ?? {})}`,
      );
    else if (format.type !== 'text')
      refuse('response_format.type', `"${String(format.type)}" is not supported`);
  } else if (target.params?.json) system.push(JSON_INSTRUCTION);

  const maxTokens =
    body.max_completion_tokens ?? body.max_tokens ?? target.params?.maxTokens ?? defaultMaxTokens;
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1)
    refuse('max_tokens', 'must be a positive integer');
  const out: Anthropic.MessageCreateParamsNonStreaming = {
    model: target.model,
    max_tokens: maxTokens as number,
    messages: turns,
  };
  if (system.length > 0) out.system = system.join('\n\n');
  const temperature = body.temperature ?? target.params?.temperature;
  // Anthropic accepts 0..1; OpenAI 0..2: clamp rather than fail the request.
  if (typeof temperature === 'number') out.temperature = Math.min(1, temperature);
  if (typeof body.top_p === 'number') out.top_p = body.top_p;
  if (body.stop != null) {
    const stop = typeof body.stop === 'string' ? [body.stop] : body.stop;
    if (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string'))
      refuse('stop', 'must be a string or a list of strings');
    out.stop_sequences = stop as string[];
  }
  if (typeof body.user === 'string') out.metadata = { user_id: body.user };
  if (body.tools != null) {
    if (!Array.isArray(body.tools)) refuse('tools', 'must be a list');
    out.tools = (body.tools as unknown[]).map((tool, i) => {
      const t = tool as {
        type?: unknown;
        function?: { name?: unknown; description?: unknown; parameters?: unknown };
      };
      if (t?.type !== 'function' || !t.function || typeof t.function.name !== 'string')
        refuse(`tools.${i}`, 'only { type: "function", function: { name, parameters } } tools translate');
      const schema = (t.function!.parameters ?? {
        type: 'object',
        properties: {},
      }) as Anthropic.Tool.InputSchema;
      const converted: Anthropic.Tool = { name: t.function!.name as string, input_schema: schema };
      if (typeof t.function!.description === 'string') converted.description = t.function!.description;
      return converted;
    });
  }
  const choice = toolChoice(body.tool_choice, refuse);
  if (body.parallel_tool_calls === false) {
    out.tool_choice = {
      ...(choice ?? { type: 'auto' }),
      disable_parallel_tool_use: true,
    } as Anthropic.ToolChoice;
  } else if (choice) out.tool_choice = choice;
  return out;
}

type Refuse = (field: string, reason: string) => never;

function toolChoice(choice: unknown, refuse: Refuse): Anthropic.ToolChoice | undefined {
  if (choice == null) return undefined;
  if (choice === 'auto') return { type: 'auto' };
  if (choice === 'none') return { type: 'none' };
  if (choice === 'required') return { type: 'any' };
  const c = choice as { type?: unknown; function?: { name?: unknown } };
  if (c.type === 'function' && typeof c.function?.name === 'string')
    return { type: 'tool', name: c.function.name };
  return refuse(
    'tool_choice',
    'must be "auto", "none", "required" or { type: "function", function: { name } }',
  );
}

function textOnly(content: unknown, at: string, refuse: Refuse): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return refuse(at, 'must be a string or a list of text parts');
  return content
    .map((part, j) => {
      const p = part as { type?: unknown; text?: unknown };
      if (
        (p?.type === 'text' || p?.type === 'refusal') &&
        typeof (p.text ?? (p as { refusal?: unknown }).refusal) === 'string'
      )
        return (p.text ?? (p as { refusal?: string }).refusal) as string;
      return refuse(`${at}.${j}.type`, `"${String(p?.type)}" parts are not allowed here`);
    })
    .join('');
}

const DATA_URL = /^data:(image\/(?:png|jpeg|gif|webp));base64,(.*)$/s;

function userBlocks(content: unknown, at: string, refuse: Refuse): Block[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  if (!Array.isArray(content)) return refuse(at, 'must be a string or a list of content parts');
  return content.map((part, j): Block => {
    const p = part as { type?: unknown; text?: unknown; image_url?: { url?: unknown } };
    if (p?.type === 'text' && typeof p.text === 'string') return { type: 'text', text: p.text };
    if (p?.type === 'image_url') {
      const url = p.image_url?.url;
      if (typeof url !== 'string') return refuse(`${at}.${j}.image_url.url`, 'is required');
      const data = DATA_URL.exec(url);
      if (data) {
        const mediaType = data[1] as 'image/png' | 'image/jpeg' | 'image/gif' | 'image/webp';
        return { type: 'image', source: { type: 'base64', media_type: mediaType, data: data[2] } };
      }
      if (/^https?:\/\//.test(url)) return { type: 'image', source: { type: 'url', url } };
      return refuse(
        `${at}.${j}.image_url.url`,
        'must be an http(s) URL or a base64 data URL of a png, jpeg, gif or webp image',
      );
    }
    return refuse(`${at}.${j}.type`, `"${String(p?.type)}" parts have no Anthropic equivalent`);
  });
}

function toolUse(call: unknown, at: string, refuse: Refuse): Block {
  const c = call as { id?: unknown; type?: unknown; function?: { name?: unknown; arguments?: unknown } };
  if (typeof c?.id !== 'string' || typeof c.function?.name !== 'string')
    return refuse(at, 'needs id and function.name');
  let input: unknown;
  try {
    input = JSON.parse(
      typeof c.function.arguments === 'string' && c.function.arguments ? c.function.arguments : '{}',
    );
  } catch {
    return refuse(`${at}.function.arguments`, 'is not valid JSON');
  }
  if (!input || typeof input !== 'object' || Array.isArray(input))
    return refuse(`${at}.function.arguments`, 'must be a JSON object');
  return { type: 'tool_use', id: c.id, name: c.function.name, input: input as Record<string, unknown> };
}

/** Anthropic `tool_use` blocks as OpenAI tool calls (`arguments` as JSON text). */
export function toolCallsOf(content: readonly { type: string }[]): ToolCall[] | undefined {
  let calls: ToolCall[] | undefined;
  for (const block of content) {
    if (block.type !== 'tool_use') continue;
    const b = block as Anthropic.ToolUseBlock;
    (calls ??= []).push({
      id: b.id,
      type: 'function',
      function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) },
    });
  }
  return calls;
}

const OPENAI_FINISH: Record<string, string> = {
  stop: 'stop',
  length: 'length',
  tool_calls: 'tool_calls',
  content_filter: 'content_filter',
};

/**
 * Anthropic stream events → OpenAI chunk JSON texts. Each `push` returns the chunk (or undefined) and
 * whether it carries answer content; `finish()` the finish chunk, `usage()` the usage chunk.
 */
export class AnthropicChunkWriter {
  private id = '';
  private readonly created = Math.floor(Date.now() / 1000);
  /** Anthropic content-block index → OpenAI tool-call index. */
  private readonly toolIndex = new Map<number, number>();

  constructor(private readonly model: string) {}

  private chunk(delta: Record<string, unknown>, finish: string | null = null): string {
    return JSON.stringify({
      id: this.id,
      object: 'chat.completion.chunk',
      created: this.created,
      model: this.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    });
  }

  push(event: Anthropic.RawMessageStreamEvent): { data: string; substantive: boolean } | undefined {
    switch (event.type) {
      case 'message_start':
        this.id = `chatcmpl-${event.message.id}`;
        return { data: this.chunk({ role: 'assistant', content: '' }), substantive: false };
      case 'content_block_start':
        if (event.content_block.type === 'tool_use') {
          const index = this.toolIndex.size;
          this.toolIndex.set(event.index, index);
          const { id, name } = event.content_block;
          return {
            data: this.chunk({
              tool_calls: [{ index, id, type: 'function', function: { name, arguments: '' } }],
            }),
            substantive: true,
          };
        }
        return undefined;
      case 'content_block_delta':
        if (event.delta.type === 'text_delta' && event.delta.text)
          return { data: this.chunk({ content: event.delta.text }), substantive: true };
        if (event.delta.type === 'input_json_delta' && event.delta.partial_json) {
          const index = this.toolIndex.get(event.index) ?? 0;
          return {
            data: this.chunk({ tool_calls: [{ index, function: { arguments: event.delta.partial_json } }] }),
            substantive: true,
          };
        }
        return undefined;
      default:
        return undefined;
    }
  }

  finish(result: CompletionResult): string {
    return this.chunk({}, OPENAI_FINISH[result.finishReason] ?? 'stop');
  }

  usage(result: CompletionResult): { data: string; chunk: unknown } {
    const chunk = {
      id: this.id,
      object: 'chat.completion.chunk',
      created: this.created,
      model: this.model,
      choices: [],
      usage: {
        prompt_tokens: result.usage.inputTokens,
        completion_tokens: result.usage.outputTokens,
        total_tokens: result.usage.inputTokens + result.usage.outputTokens,
      },
    };
    return { data: JSON.stringify(chunk), chunk };
  }
}
