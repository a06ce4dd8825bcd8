/** While the canary policy holds a share: since when, by what, for how long (an estimate), and the alert. */
import { log } from '@temporalio/workflow';
import { formatDuration } from '../../src/decision/config/duration';
import type { Decision, HoldEstimate } from '../../src/decision/policy';
import { bpsText } from './publish';
import type { RolloutRun } from './run';

export function noteHold(r: RolloutRun, decision: Decision, estimateNow: () => HoldEstimate | null): void {
  if (decision.action !== 'hold') {
    r.status.hold = undefined;
    return;
  }
  let e: HoldEstimate | null = null;
  try {
    e = estimateNow();
  } catch (err) {
    log.warn('hold estimate failed', { error: (err as Error).message }); // an estimate never stops a rollout
  }
  const same = r.status.hold?.shareBps === r.status.shareBps;
  const since = same ? r.status.hold!.since : new Date().toISOString();
  r.status.hold = {
    since,
    shareBps: r.status.shareBps,
    estimate: e ?? undefined,
    expectedAt: e?.etaMs != null ? new Date(Date.now() + e.etaMs).toISOString() : undefined,
    alerted: same ? r.status.hold!.alerted : undefined,
  };
  // A hold that lasts is worth a word to the people waiting on it: once per hold, with what it waits for.
  const heldMs = Date.now() - Date.parse(since);
  if (!r.status.hold.alerted && heldMs >= r.spec.alerts.holdAfter) {
    r.status.hold.alerted = true;
    void r.alert(
      'hold',
      `Rollout of ${r.candidateName} on ${r.route} held at ${bpsText(r.status.shareBps)} for ${formatDuration(heldMs)}: ` +
        (e?.summary ?? decision.reasons[0] ?? 'waiting for evidence'),
      { since, expectedAt: r.status.hold.expectedAt ?? null },
    );
  }
}
