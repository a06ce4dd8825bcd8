/**
 * What the rollout shows outside its status query: search attributes, memo and the UI's current details.
 * Each upsert is an event in the history, so only what changed is upserted.
 */
import { setCurrentDetails, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import { noEvidenceCause, scoringLine } from '../../src/decision/scoring/evidence';
import {
  CanaryBasisPoints,
  RolloutCandidate,
  RolloutPhase,
  RolloutRoute,
  RolloutStep,
  RolloutStepKind,
  RolloutStrategy,
} from '../../src/control-plane/temporal/search-attributes';
import type { RolloutOutcome, RolloutStatus } from '../messages';

export interface PublishedView {
  route: string;
  candidate: string;
  strategy: string;
  status: RolloutStatus;
  outcome: RolloutOutcome | undefined;
}

type Published = { attributes: string; memo: string };

/** Upserts what changed since `last`; returns what is now published. */
export function publishStatus(v: PublishedView, last: Published | undefined): Published {
  const s = v.status;
  const attributes = [
    { key: RolloutRoute, value: v.route },
    { key: RolloutPhase, value: s.phase },
    { key: RolloutCandidate, value: v.candidate },
    { key: RolloutStrategy, value: v.strategy },
    { key: CanaryBasisPoints, value: s.shareBps },
    // 1-based, as people count steps; 0 before the first and after the last.
    { key: RolloutStep, value: s.step ? s.step.index + 1 : 0 },
    { key: RolloutStepKind, value: s.step?.kind ?? '' },
  ];
  const last10 = s.decisions[s.decisions.length - 1];
  const memo = {
    route: v.route,
    candidate: v.candidate,
    stable: s.stable,
    phase: s.phase,
    shareBps: s.shareBps,
    step: s.step ? `${s.step.index + 1}/${s.plan.length} ${s.step.description}` : null,
    lastDecision: last10?.reasons[0] ?? null,
  };
  const now = { attributes: JSON.stringify(attributes.map((a) => a.value)), memo: JSON.stringify(memo) };
  if (now.attributes !== last?.attributes) upsertSearchAttributes(attributes);
  if (now.memo !== last?.memo) upsertMemo(memo);
  setCurrentDetails(
    [
      `**${v.route}**: ${s.stable || '?'} (stable) -> ${v.candidate} (candidate), ${v.strategy}`,
      `phase **${s.phase}**${s.paused ? ' (paused)' : ''}, canary share **${bpsText(s.shareBps)}**`,
      planLine(s),
      s.hold?.estimate ? `held since ${s.hold.since}: ${s.hold.estimate.summary}` : '',
      s.scoring?.noQualityEvidence ? `**no quality evidence**: ${noEvidenceCause(s.scoring)}` : '',
      s.scoring ? scoringLine(s.scoring) : '',
      last10 ? `last decision: ${last10.action} - ${last10.reasons.join('; ')}` : '',
      gateLine(s),
      ...analysisLines(s),
      s.deadline?.holding
        ? `**held by its ${s.deadline.kind} progress deadline**: promote, resume or roll back`
        : '',
      v.outcome ? `outcome: ${v.outcome.result} - ${v.outcome.reason}` : '',
      s.generation
        ? `run ${s.generation + 1} of this rollout (continued as new; ${s.decisionSummary?.total ?? 0} decisions in all)`
        : '',
    ]
      .filter(Boolean)
      .join('\n\n'),
  );
  return now;
}

/** "steps: shadow 25% → 5% → **10%** → approval → 100% → bake 30m" with the current one in bold. */
export function planLine(s: Pick<RolloutStatus, 'plan' | 'step'>): string {
  if (s.plan.length === 0) return '';
  const entries = s.plan.map((p, i) => {
    const text = p.share !== undefined ? bpsText(p.share) : p.description;
    return s.step?.index === i ? `**${text}**` : text;
  });
  const at = s.step ? `step ${s.step.index + 1}/${s.plan.length} (${s.step.description}): ` : 'steps: ';
  return at + entries.join(' → ');
}

/** What a webhook gate waits for: "waits for webhook 'release-gate' (confirm-promotion): answered 403". */
export function gateLine(s: Pick<RolloutStatus, 'gate' | 'step'>): string {
  const g = s.gate;
  if (!g || g.state === 'passed' || s.step?.kind !== 'webhook') return '';
  const last =
    g.lastStatus !== undefined
      ? `answered ${g.lastStatus}${g.lastAnswer ? ` (${g.lastAnswer})` : ''}`
      : g.lastAnswer;
  return g.state === 'asking'
    ? `**waits for webhook '${g.hook}'** (${g.type}), asked ${g.asked + 1} time(s)${last ? `; last ${last}` : ''}`
    : `**held by webhook '${g.hook}'** (${g.type}) since ${g.since}: ${last ?? 'no answer'}; asked again, or promote / roll back`;
}

/** One line per metric check with its latest value: "analysis error-rate: result 0.01 meets result < 0.05". */
export function analysisLines(s: Pick<RolloutStatus, 'analysis'>): string[] {
  const checks = [...(s.analysis?.step ?? []), ...(s.analysis?.background ?? [])];
  return checks.map((c) => {
    const held = c.verdict === 'held' ? ' **(held: inconclusive)**' : '';
    return `analysis ${c.last?.reason ?? `${c.name}: not measured yet`}${held}`;
  });
}

export function bpsText(bps: number): string {
  return `${bps / 100}%`;
}
