/**
 * What an open prompt is about, as far as the simulator can tell: its longest distinct words. A simulated
 * model that answers an open prompt well talks about them; one that answers badly drifts off topic; the
 * simulated judge checks which of the two it reads. Pure code.
 */
const STOP = new Set(['about', 'which', 'would', 'could', 'should', 'there', 'their', 'these', 'those']);

export function topicWords(prompt: string, max = 3): string[] {
  const words = prompt.toLowerCase().match(/[a-z][a-z-]{4,}/g) ?? [];
  const distinct = [...new Set(words)].filter((w) => !STOP.has(w));
  // Longest first, ties in prompt order: stable for a given prompt.
  return distinct
    .map((word, index) => ({ word, index }))
    .sort((a, b) => b.word.length - a.word.length || a.index - b.index)
    .slice(0, max)
    .map((w) => w.word);
}

/** The share of the prompt's topic words that the answer mentions (1 when the prompt has none). */
export function topicCoverage(prompt: string, answer: string): number {
  const words = topicWords(prompt);
  if (words.length === 0) return 1;
  const text = answer.toLowerCase();
  return words.filter((w) => text.includes(w)).length / words.length;
}
