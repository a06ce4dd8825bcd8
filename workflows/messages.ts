/**
 * The messages of a rollout, defined once and imported by the workflow, the CLI and scripts. Payloads are
 * plain JSON so that any Temporal client works too, e.g.
 *   temporal workflow signal --workflow-id rollout-support-bot --name rollback --input '{"reason":"bad answers"}'
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  Decision,
  DecisionAction,
  DecisionSource,
  HoldEstimate,
  ResolvedPolicy,
  ShadowAnalysis,
  TriggerResult,
} from '../src/decision/policy';
import type { ScoringStatus } from '../src/decision/scoring/evidence';
import type { CheckState } from '../src/decision/analysis/tally';

export type { ScoringStatus };

export interface ActorInput {
  actor?: string;
  reason?: string;
}
export interface RollbackInput {
  reason: string;
  actor?: string;
}
export interface PromoteInput {
  /** Jump straight to 100% instead of the next step. */
  toFull?: boolean;
  actor?: string;
}

export const pauseSignal = defineSignal<[ActorInput?]>('pause');
export const resumeSignal = defineSignal<[ActorInput?]>('resume');
export const rollbackSignal = defineSignal<[RollbackInput]>('rollback');
export const promoteSignal = defineSignal<[PromoteInput?]>('promote');
export const approveSignal = defineSignal<[ActorInput?]>('approve');

/** Rolls back and returns only once the routing state has changed. */
export const rollbackUpdate = defineUpdate<RolloutOutcome, [RollbackInput]>('rollback');

/*
 * The same requests as Updates, for callers that need an answer: a request the rollout cannot take (it has
 * ended, it waits for approval, it is already promoted) is refused by the validator with the reason, before
 * anything is recorded; an accepted one returns the status once the rollout has acted on it.
 */
export const pauseUpdate = defineUpdate<RolloutStatus, [ActorInput]>('pause');
export const resumeUpdate = defineUpdate<RolloutStatus, [ActorInput]>('resume');
export const promoteUpdate = defineUpdate<RolloutStatus, [PromoteInput]>('promote');
export const approveUpdate = defineUpdate<RolloutStatus, [ActorInput]>('approve');

export const statusQuery = defineQuery<RolloutStatus>('status');

/**
 * Where the rollout is: 'starting', then the phase of each step as its kind says ('shadow', 'canary',
 * 'paused', 'awaiting-approval', 'promoting', 'baking', ...; src/decision/config/steps), then how it ended.
 */
export type RolloutPhase =
  'starting' | 'completed' | 'rolled_back' | 'shadow-report' | 'cancelled' | (string & {}); // any step kind's phase

/** One step of the rollout's list, as people read it. */
export interface PlanEntry {
  kind: string;
  description: string;
  /** The canary share it sets (basis points), for steps that move traffic. */
  share?: number;
}

/** The step the rollout is at. */
export interface CurrentStep extends PlanEntry {
  /** 0-based index in `plan`. */
  index: number;
  startedAt: string;
}

export interface DecisionEntry extends Decision {
  at: string;
  phase: RolloutPhase;
  shareBps: number;
}

export interface StepEntry {
  at: string;
  fromBps: number;
  toBps: number;
  /** 'policy' when the decision moved it, otherwise the actor of the signal. */
  by: string;
}

export interface RolloutOutcome {
  result: 'completed' | 'rolled_back' | 'shadow-report' | 'cancelled';
  route: string;
  reason: string;
  finalShareBps: number;
  /** The model serving all traffic at the end. */
  stable: string;
  at: string;
  /** The numbers behind a rollback or a shadow report. */
  evidence?: Record<string, unknown>;
  shadow?: ShadowAnalysis;
}

/** The canary share is held: since when, and what it is waiting for (see src/decision/policy/estimate.ts). */
export interface HoldStatus {
  since: string;
  shareBps: number;
  /** Which condition holds, what it needs, and when the step is expected to advance at the current rates. */
  estimate?: HoldEstimate;
  /** Now + the estimate, when there is one. */
  expectedAt?: string;
  /** True once the "hold" alert went out for this hold. */
  alerted?: boolean;
}

/** Every decision of the rollout counted, across runs: `decisions` keeps only the latest ten. */
export interface DecisionSummary {
  total: number;
  byAction: Partial<Record<DecisionAction, number>>;
  byPolicy: Partial<Record<DecisionSource, number>>;
  firstAt?: string;
  lastAt?: string;
}

/** A progress deadline or approval timeout that passed, and what the rollout did. */
export interface DeadlineStatus {
  kind: 'step' | 'rollout' | 'approval';
  at: string;
  action: 'hold' | 'rollback' | 'approve';
  /** Set for 'hold' until a person promotes, resumes or rolls back. */
  holding?: boolean;
}

export interface RolloutStatus {
  route: string;
  workflowId: string;
  strategy: string;
  phase: RolloutPhase;
  shareBps: number;
  paused: boolean;
  awaitingApproval: boolean;
  stable: string;
  candidate: string;
  routingVersion: number;
  startedAt: string;
  /** The step list it walks. */
  plan: PlanEntry[];
  /** The step it is at (absent before the first and after the last). */
  step?: CurrentStep;
  /** The latest decisions, newest last (at most 10). */
  decisions: DecisionEntry[];
  triggers: TriggerResult[];
  /** Every change of the canary share, in order (the promotion last). */
  steps: StepEntry[];
  shadow?: ShadowAnalysis;
  /** Set while the canary policy holds the share. */
  hold?: HoldStatus;
  outcome?: RolloutOutcome;
  /** Quality evidence so far. */
  scoring?: ScoringStatus;
  /** All decisions counted, across runs. */
  decisionSummary?: DecisionSummary;
  /** Runs of this rollout before the current one (it continues as new to keep its history short). */
  generation?: number;
  firstRunId?: string;
  /** The policy it decides on, resolved in full when it started. */
  policy?: ResolvedPolicy;
  /** Set once a progress deadline or the approval timeout has passed. */
  deadline?: DeadlineStatus;
  /** The webhook the rollout waits on (a webhook step, or a hook the spec placed as one), and its answers. */
  gate?: GateStatus;
  /** The metric checks (the spec's `analysis` and the current analysis step), with their latest values. */
  analysis?: AnalysisStatus;
}

/** A webhook gate being asked: since when, what it answered, and what a refusal does. */
export interface GateStatus {
  hook: string;
  type: string;
  since: string;
  /** 'asking': a call is under way; 'refused': it said no (or did not answer) and the rollout holds. */
  state: 'asking' | 'refused' | 'passed';
  onRefusal: 'hold' | 'rollback';
  /** Calls so far (each with Temporal's retries). */
  asked: number;
  lastStatus?: number;
  /** The start of the hook's answer, or why there was none. */
  lastAnswer?: string;
  /** A person's promote passed it. */
  passedBy?: string;
}

export interface AnalysisStatus {
  /** The spec's checks, measured through the canary and the bake. */
  background: CheckState[];
  /** The current analysis step's checks. */
  step?: CheckState[];
}
