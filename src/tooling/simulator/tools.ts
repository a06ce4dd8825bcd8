import type { ChatRequest, SimulatedToolCall } from './wire/format';

/**
 * How the simulated model uses the caller's tools, the same in both wire formats:
 * - when tools are offered, tool choice is not `none` and the conversation does not end with tool
 *   results, it calls tools instead of answering: the forced one, else every offered tool whose name the
 *   last user message mentions (one when parallel calls are off), else the first tool;
 * - when the conversation ends with tool results, it answers in text, quoting them.
 * Arguments are an example value of each tool's JSON schema (also used for `json_schema` answers).
 */
export function plannedToolCalls(
  request: ChatRequest,
  nextId: () => string,
): SimulatedToolCall[] | undefined {
  const { tools, toolChoice } = request;
  if (tools.length === 0 || toolChoice === 'none' || request.toolResults.length > 0) return undefined;
  let chosen = tools;
  if (typeof toolChoice === 'object') {
    chosen = tools.filter((t) => t.name === toolChoice.name);
  } else {
    const text = request.lastUserText.toLowerCase();
    const mentioned = tools.filter((t) => text.includes(t.name.toLowerCase()));
    chosen = mentioned.length > 0 ? mentioned : tools.slice(0, 1);
  }
  if (!request.parallelToolCalls) chosen = chosen.slice(0, 1);
  if (chosen.length === 0) return undefined;
  return chosen.map((tool) => ({
    id: nextId(),
    name: tool.name,
    arguments: JSON.stringify(exampleOf(tool.parameters, request.lastUserText)),
  }));
}

/** The answer after tool results: what the tools returned, in a sentence. */
export function answerFromToolResults(results: readonly string[]): string {
  return `According to the tool${results.length > 1 ? 's' : ''}: ${results.join('; ')}.`;
}

/** A value that satisfies a (simple) JSON schema: enums, objects with their properties, arrays, scalars. */
export function exampleOf(schema: unknown, hint = ''): unknown {
  if (!schema || typeof schema !== 'object') return {};
  const s = schema as {
    type?: unknown;
    enum?: unknown[];
    properties?: Record<string, unknown>;
    items?: unknown;
    anyOf?: unknown[];
    const?: unknown;
  };
  if (s.const !== undefined) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  if (Array.isArray(s.anyOf) && s.anyOf.length > 0) return exampleOf(s.anyOf[0], hint);
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
  switch (type) {
    case 'string':
      return hintWord(hint);
    case 'number':
      return 1.5;
    case 'integer':
      return 1;
    case 'boolean':
      return true;
    case 'array':
      return [exampleOf(s.items, hint)];
    case 'null':
      return null;
    default: {
      const out: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(s.properties ?? {})) out[key] = exampleOf(value, hint);
      return out;
    }
  }
}

/** The first capitalized word inside a sentence (a place or a name, most often), else "example". */
function hintWord(hint: string): string {
  const word = /(?<![.!?]\s+|^\s*)\b[A-Z][a-z]{2,}\b/.exec(hint);
  return word ? word[0] : 'example';
}
