/**
 * What a rollout hands to its next run when it continues as new: everything its story needs to go on where
 * it stopped (the step list and the step it was in with that step's own state, the route claim, the
 * routing version, the canary's windows and baseline, the policy, pending requests) and everything
 * `status` shows, so the status query and the Temporal UI tell one story across runs. Plain JSON: it
 * travels as the new run's second argument.
 */
import type { Step } from '../../src/decision/config/steps';
import type {
  DeadlineState,
  DecisionAction,
  DecisionSource,
  ResolvedPolicy,
} from '../../src/decision/policy';
import type { DecisionSummary, RolloutStatus } from '../messages';

/** Where in its list the rollout stopped: the step, and the state that step's executor keeps. */
export interface RolloutPosition {
  index: number;
  state: unknown;
}

/** What the triggers watch: the candidate in shadow or canary, or the new stable model after promotion. */
export interface WatchState {
  tag: 'shadow' | 'canary' | 'stable';
  sinceMs: number;
}

/** The canary's windows, from its first share on: one step per routing version its change produced. */
export interface CanaryState {
  fromMs: number;
  /** Stable's p95 latency before the canary (null: no traffic to measure): above it a request is slow. */
  baselineMs: number | null;
  stepVersions: number[];
}

export interface RolloutCarry {
  /** Runs before this one (0 in the first run). */
  generation: number;
  /** The first run's id: the prefix of every idempotency key, so a key never repeats across runs. */
  firstRunId: string;
  /** The list it walks, as the first run parsed it. */
  steps: Step[];
  /** The policy it decides on, resolved when it started. */
  policy: ResolvedPolicy;
  claim: { stable: string; stableSlot: 'blue' | 'green'; candidateSlot: 'blue' | 'green' };
  startedMs: number;
  /** Routing changes so far (the counter in idempotency keys). */
  changes: number;
  /** Who ended the last step: 'policy', or the actor of a promote. */
  advancedBy: string;
  /** A `promote --full` is under way: steps before the promotion are passed, up to a gate. */
  toFull: boolean;
  lastEvidenceMs?: number;
  lastTriggerCheckMs: number;
  watch: WatchState;
  canary?: CanaryState;
  deadlines: DeadlineState;
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
