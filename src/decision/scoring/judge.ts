import type { ChatMessage, Target } from '../../data-plane/providers/types';
import type { FallbackChain } from '../../data-plane/providers/fallback-chain';

/**
 * LLM judge for answers without a reference. A rubric score (1-5) for one answer, and a pairwise verdict
 * for a shadow comparison, asked twice with the positions swapped: judges favour the first answer they
 * read, so only a verdict that survives the swap counts; a flip is a tie.
 */
export type PairVerdict = 'shadow_better' | 'stable_better' | 'tie';

const RUBRIC = `You grade answers from an AI assistant. Score the answer to the user's question from 1 to 5:
5 correct and complete, 4 correct with minor issues, 3 partly correct, 2 mostly wrong, 1 wrong or empty.
Reply with the single digit only.`;

const PAIRWISE = `You compare two answers (A and B) to the same user question. Reply with exactly one of:
A (A is better), B (B is better), TIE.`;

export interface JudgeOptions {
  /** Replaces the default rubric; the reply must still carry one digit 1-5. */
  rubric?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** The judge's 1-5 score (null when its reply holds none) and what the call cost. Provider errors throw. */
export async function judgeScore(
  chain: FallbackChain,
  judge: Target,
  question: string,
  answer: string,
  options: JudgeOptions = {},
): Promise<{ score: number | null; costUsd: number }> {
  // The question and answer always travel in this frame, whatever the rubric: a rubric is the team's,
  // the frame is what keeps the graded text apart from the instructions.
  const messages: ChatMessage[] = [
    { role: 'system', content: options.rubric ?? RUBRIC },
    { role: 'user', content: `Question:\n${question}\n\nAnswer:\n${answer}` },
  ];
  const result = await chain.complete([judge], messages, {
    timeoutMs: options.timeoutMs ?? 30_000,
    signal: options.signal,
  });
  return { score: parseScore(result.text), costUsd: result.costUsd };
}

export function parseScore(text: string): number | null {
  const match = /\b([1-5])\b/.exec(text);
  return match ? Number(match[1]) : null;
}

export function parsePreference(text: string): 'A' | 'B' | 'TIE' | null {
  const t = text.trim().toUpperCase();
  if (/^TIE\b/.test(t)) return 'TIE';
  if (/^A\b/.test(t)) return 'A';
  if (/^B\b/.test(t)) return 'B';
  return null;
}

export async function judgePair(
  chain: FallbackChain,
  judge: Target,
  question: string,
  stableAnswer: string,
  shadowAnswer: string,
  options: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<PairVerdict> {
  const ask = async (a: string, b: string) =>
    parsePreference(
      (
        await chain.complete(
          [judge],
          [
            { role: 'system', content: PAIRWISE },
            { role: 'user', content: `Question:\n${question}\n\nAnswer A:\n${a}\n\nAnswer B:\n${b}` },
          ],
          { timeoutMs: options.timeoutMs ?? 30_000, signal: options.signal },
        )
      ).text,
    );
  const [first, swapped] = await Promise.all([
    ask(stableAnswer, shadowAnswer),
    ask(shadowAnswer, stableAnswer),
  ]);
  return combineSwapped(first, swapped);
}

/** `first` has stable as A; `swapped` has shadow as A. Agreement across the swap decides; anything else ties. */
export function combineSwapped(
  first: 'A' | 'B' | 'TIE' | null,
  swapped: 'A' | 'B' | 'TIE' | null,
): PairVerdict {
  if (first === 'B' && swapped === 'A') return 'shadow_better';
  if (first === 'A' && swapped === 'B') return 'stable_better';
  return 'tie';
}
