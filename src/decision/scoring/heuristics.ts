/**
 * The last resort when there is no reference, no judge and no feedback: cheap checks that catch plainly
 * broken answers. A pass scores 4 of 5 (not 5: it proves only that nothing is obviously wrong), a failure 1;
 * the evaluator normalises both to [0, 1] like every 1-5 grade (0.75 and 0).
 */
export function heuristicScore(answer: string, expectJson: boolean): number {
  const text = answer.trim();
  if (text.length === 0) return 1;
  if (expectJson) {
    try {
      JSON.parse(text);
    } catch {
      return 1;
    }
  }
  return 4;
}

/** Feedback as a 1-5 score: thumbs up 5, down 1, or the given score clamped into range. */
export function feedbackScore(feedback: { score: number | null; thumbs: string | null }): number | null {
  if (feedback.score !== null && Number.isFinite(feedback.score))
    return Math.min(5, Math.max(1, feedback.score));
  if (feedback.thumbs === 'up') return 5;
  if (feedback.thumbs === 'down') return 1;
  return null;
}
