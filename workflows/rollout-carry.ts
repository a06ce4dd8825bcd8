/**
 * What a rollout hands to its next run when it continues as new: everything its story needs to go on where
 * it stopped (the route claim, the routing version, the phase and the position in it, the baseline, the
 * policy config, pending requests) and everything `status` shows, so the status query and the Temporal UI
 * tell one story across runs. Plain JSON: it travels as the new run's second argument.
 */
import type { DecisionAction, DecisionSource, ResolvedPolicyConfig } from '../src/decision/policy';
import type { DecisionSummary, RolloutStatus } from './messages';

/** Where in its story the rollout stopped; the next run resumes the loop of that phase. */
export type RolloutPosition =
  | { phase: 'shadow'; sinceMs: number; deadlineMs: number }
  | {
      phase: 'canary';
      index: number;
      /** Stable's p95 latency before the canary (null: no traffic to measure). */
      baselineMs: number | null;
      canaryFromMs: number;
      stepFromMs: number;
      deadlines: DeadlineState;
      /** The routing version each step's change produced, when steps are cut by version (see rollout-patches). */
      stepVersions?: number[];
    }
  | { phase: 'approval'; sinceMs: number; deadlineMs: number }
  | { phase: 'bake'; sinceMs: number; endMs: number };

/** The canary's progress deadlines: from when the step's deadline counts, and which deadlines passed. */
export interface DeadlineState {
  stepFromMs: number;
  stepPassed: boolean;
  rolloutPassed: boolean;
}

export interface RolloutCarry {
  /** Runs before this one (0 in the first run). */
  generation: number;
  /** The first run's id: the prefix of every idempotency key, so a key never repeats across runs. */
  firstRunId: string;
  /** The first run's answers to its once-per-rollout patch questions. */
  legacyWebhookUrl: boolean;
  legacyApprovalHold: boolean;
  bounded: boolean;
  /** The policy config the rollout decides on (resolved in full; see resolvePolicyConfig). */
  policy: ResolvedPolicyConfig;
  claim: { stable: string; stableSlot: 'blue' | 'green'; candidateSlot: 'blue' | 'green' };
  startedMs: number;
  /** Routing changes so far (the counter in idempotency keys). */
  step: number;
  promotedBy: string;
  lastEvidenceMs?: number;
  lastTriggerCheckMs: number;
  pending: { promote?: { toFull: boolean; actor: string }; approvedBy?: string };
  at: RolloutPosition;
  status: RolloutStatus;
}

export function countDecision(
  summary: DecisionSummary | undefined,
  decision: { action: DecisionAction; policy: DecisionSource; at: string },
): DecisionSummary {
  const s = summary ?? { total: 0, byAction: {}, byPolicy: {} };
  return {
    total: s.total + 1,
    byAction: { ...s.byAction, [decision.action]: (s.byAction[decision.action] ?? 0) + 1 },
    byPolicy: { ...s.byPolicy, [decision.policy]: (s.byPolicy[decision.policy] ?? 0) + 1 },
    firstAt: s.firstAt ?? decision.at,
    lastAt: decision.at,
  };
}
