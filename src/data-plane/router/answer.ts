import type { CompletionResult } from '../providers';

/**
 * The answer as text for capture and scoring: the text, or for an answer that calls the caller's tools, the
 * calls spelled out (`[tool call] get_weather({"city":"Lisbon"})`), so a judge sees what the model did.
 */
export function answerOf(result: CompletionResult): string {
  const calls = result.toolCalls;
  if (!calls || calls.length === 0) return result.text;
  const spelled = calls.map((c) => `[tool call] ${c.function.name}(${c.function.arguments})`).join('\n');
  return result.text ? `${result.text}\n${spelled}` : spelled;
}
