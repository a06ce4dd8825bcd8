/**
 * A stand-in tokenizer: a token is optional leading whitespace plus up to four visible characters,
 * which lands near the ~4 characters per token of real BPE tokenizers on English text. The pieces
 * join back to the exact input, so truncating at `max_tokens` and splitting a stream into chunks
 * never lose or invent characters.
 */
const TOKEN = /\s*\S{1,4}|\s+/g;

export function tokenize(text: string): string[] {
  return text.match(TOKEN) ?? [];
}

export function countTokens(text: string): number {
  return tokenize(text).length;
}

/** Per-message overhead real chat APIs charge for role markers and separators. */
const TOKENS_PER_MESSAGE = 4;

export function countPromptTokens(texts: readonly string[]): number {
  return texts.reduce((sum, text) => sum + countTokens(text) + TOKENS_PER_MESSAGE, 0);
}

/** Groups tokens into stream deltas of a few tokens each, as real providers send them. */
export function chunkTokens(tokens: readonly string[], tokensPerChunk = 4): string[] {
  const chunks: string[] = [];
  for (let i = 0; i < tokens.length; i += tokensPerChunk) {
    chunks.push(tokens.slice(i, i + tokensPerChunk).join(''));
  }
  return chunks;
}
