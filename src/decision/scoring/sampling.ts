/**
 * Which unscored answers a scoring batch takes. Pure code.
 *
 * The candidate's answers (canary, shadow) are the scarce side: at a 5% share there are nineteen stable
 * answers for each of them, and the policy can decide no faster than the candidate's evidence grows. So
 * the candidate arm is served first, and the stable arm, which has plenty, gets a reserved quarter of the
 * batch (it needs scores too: the comparison is stable vs candidate) and beyond that as many as the candidate
 * got (equal samples make the comparison's variance smallest). Stable answers left out are a sample not taken, not a backlog.
 */
export interface SampleAllocation {
  candidate: number;
  stable: number;
}

export function allocateBatch(
  limit: number,
  candidateAvailable: number,
  stableAvailable: number,
): SampleAllocation {
  const cap = Math.max(0, Math.floor(limit));
  const reserved = Math.min(stableAvailable, Math.floor(cap / 4));
  const candidate = Math.min(candidateAvailable, cap - reserved);
  const stable = Math.min(stableAvailable, cap - candidate, Math.max(reserved, candidate));
  return { candidate, stable };
}
