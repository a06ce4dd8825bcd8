/**
 * What the rollout shows outside its status query: search attributes, memo, the UI's current details, and
 * the hold (since when, what it waits for, the hold alert).
 */
import { log, patched, setCurrentDetails, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import { formatDuration } from '../src/decision/config/duration';
import type { Decision, HoldEstimate } from '../src/decision/policy';
import { noEvidenceCause, scoringLine } from '../src/decision/scoring/evidence';
import {
  CanaryBasisPoints,
  RolloutCandidate,
  RolloutPhase,
  RolloutRoute,
  RolloutStrategy,
} from '../src/control-plane/temporal/search-attributes';
import { HOLD_ALERT, PUBLISH_CHANGES_ONLY } from './rollout-patches';
import type { RolloutRun } from './rollout-run';

/** Keeps `status.hold` current: since when the share is held, by what, and for how long (an estimate). */
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
  if (!r.status.hold.alerted && heldMs >= r.spec.alerts.holdAfter && patched(HOLD_ALERT)) {
    r.status.hold.alerted = true;
    void r.alert(
      'hold',
      `Rollout of ${r.candidateName} on ${r.route} held at ${bpsText(r.status.shareBps)} for ${formatDuration(heldMs)}: ` +
        (e?.summary ?? decision.reasons[0] ?? 'waiting for evidence'),
      { since, expectedAt: r.status.hold.expectedAt ?? null },
    );
  }
}

/**
 * Search attributes, memo and the UI's "current details": the rollout's story at a glance. Each upsert is
 * an event in the history, so (since the patch) only what changed is upserted.
 */
export function publishStatus(r: RolloutRun): void {
  const attributes = [
    { key: RolloutRoute, value: r.route },
    { key: RolloutPhase, value: r.status.phase },
    { key: RolloutCandidate, value: r.candidateName },
    { key: RolloutStrategy, value: r.spec.strategy },
    { key: CanaryBasisPoints, value: r.status.shareBps },
  ];
  const last = r.status.decisions[r.status.decisions.length - 1];
  const memo = {
    route: r.route,
    candidate: r.candidateName,
    stable: r.status.stable,
    phase: r.status.phase,
    shareBps: r.status.shareBps,
    lastDecision: last?.reasons[0] ?? null,
  };
  const onlyChanges = patched(PUBLISH_CHANGES_ONLY);
  const now = { attributes: JSON.stringify(attributes.map((a) => a.value)), memo: JSON.stringify(memo) };
  if (!onlyChanges || now.attributes !== r.published?.attributes) upsertSearchAttributes(attributes);
  if (!onlyChanges || now.memo !== r.published?.memo) upsertMemo(memo);
  r.published = now;
  setCurrentDetails(
    [
      `**${r.route}**: ${r.status.stable || '?'} (stable) -> ${r.candidateName} (candidate), ${r.spec.strategy}`,
      `phase **${r.status.phase}**${r.status.paused ? ' (paused)' : ''}, canary share **${bpsText(r.status.shareBps)}**`,
      r.status.hold?.estimate ? `held since ${r.status.hold.since}: ${r.status.hold.estimate.summary}` : '',
      r.status.scoring?.noQualityEvidence
        ? `**no quality evidence**: ${noEvidenceCause(r.status.scoring)}`
        : '',
      r.status.scoring ? scoringLine(r.status.scoring) : '',
      last ? `last decision: ${last.action} - ${last.reasons.join('; ')}` : '',
      r.status.deadline?.holding
        ? `**held by its ${r.status.deadline.kind} progress deadline**: promote, resume or roll back`
        : '',
      r.outcome ? `outcome: ${r.outcome.result} - ${r.outcome.reason}` : '',
      r.status.generation
        ? `run ${r.status.generation + 1} of this rollout (continued as new; ${r.status.decisionSummary?.total ?? 0} decisions in all)`
        : '',
    ]
      .filter(Boolean)
      .join('\n\n'),
  );
}

export function bpsText(bps: number): string {
  return `${bps / 100}%`;
}
