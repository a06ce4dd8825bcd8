import {
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  log,
  patched,
  workflowInfo,
} from '@temporalio/workflow';
import type { AlertEvent } from '../activities/alerts';
import { channelsFor } from '../src/control-plane/alerts/kinds';
import type { RolloutSpec } from '../src/decision/config/rollout-spec';
import { formatTarget } from '../src/decision/config/target';
import {
  evaluateTriggers,
  resolvePolicyConfig,
  type Decision,
  type PolicyConfig,
} from '../src/decision/policy';
import type { TriggerSpec } from '../src/decision/policy';
import { DURABLE, ROUTING } from './activity-options';
import { acts, alerts } from './rollout-activities';
import { countDecision, type DeadlineState, type RolloutCarry, type RolloutPosition } from './rollout-carry';
import { bpsText, publishStatus } from './rollout-publish';
import { CONTINUE_AS_NEW } from './rollout-patches';
import { triggerSpecsOf } from './triggers';
import type { RolloutOutcome, RolloutPhase as Phase, RolloutStatus } from './messages';
import type { rolloutWorkflow } from './rollout';

/** Thrown inside the story to stop it and roll back, with the evidence. */
export class RollbackRequested extends Error {
  constructor(
    readonly reason: string,
    readonly actor: string,
    readonly evidence: Record<string, unknown> = {},
  ) {
    super(reason);
  }
}

/** What the run was started with: the spec, and the once-per-rollout answers (carried across runs). */
export interface RunOptions {
  input: unknown;
  spec: RolloutSpec;
  carried?: RolloutCarry;
  bounded: boolean;
  legacyWebhookUrl: boolean;
  legacyApprovalHold: boolean;
  policy: PolicyConfig | undefined;
}

/**
 * The state of one run of a rollout and the steps every phase takes with it: routing changes, decisions,
 * alerts, the wait between checks, the triggers, continue-as-new, the end. The phases are in
 * rollout-shadow.ts, rollout-canary.ts and rollout-gates.ts; the story that strings them together and the
 * message handlers in rollout.ts.
 */
export class RolloutRun {
  readonly input: unknown;
  readonly spec: RolloutSpec;
  readonly route: string;
  readonly candidateName: string;
  readonly triggers: TriggerSpec[];
  readonly workflowId: string;
  readonly runId: string;
  /** The first run's id: idempotency keys stay unique across runs. */
  readonly keyBase: string;
  readonly bounded: boolean;
  readonly legacyWebhookUrl: boolean;
  readonly legacyApprovalHold: boolean;
  /** The config every decision uses; undefined for rollouts before the patch, which resolve it as they go. */
  policy: PolicyConfig | undefined;
  readonly status: RolloutStatus;
  rollbackRequest: RollbackRequested | undefined;
  promoteRequest: { toFull: boolean; actor: string } | undefined;
  approvedBy: string | undefined;
  outcome: RolloutOutcome | undefined;
  previousStableSlot: 'blue' | 'green';
  candidateSlot: 'blue' | 'green';
  lastTriggerCheck: number;
  /** Counts routing changes, for idempotency keys. */
  step: number;
  /** Who took the last step to 100%: the policy, or the actor of a promote signal. */
  promotedBy: string;
  /** When the candidate last got a score (workflow time). */
  lastEvidenceMs: number | undefined;
  /** What publishStatus() last upserted. */
  published: { attributes: string; memo: string } | undefined;
  /** The canary's progress deadlines (bounded rollouts). */
  deadlines: DeadlineState | undefined;
  /** Alerts not waited for, delivered before continuing as new. */
  readonly pendingAlerts = new Set<Promise<void>>();
  claim: RolloutCarry['claim'];
  startedMs: number;

  constructor(o: RunOptions) {
    const { carried, spec } = o;
    const { workflowId, runId } = workflowInfo();
    this.input = o.input;
    this.spec = spec;
    this.bounded = o.bounded;
    this.legacyWebhookUrl = o.legacyWebhookUrl;
    this.legacyApprovalHold = o.legacyApprovalHold;
    this.policy = o.policy;
    this.workflowId = workflowId;
    this.runId = runId;
    this.keyBase = carried?.firstRunId ?? runId;
    this.route = spec.route;
    this.candidateName = formatTarget(spec.candidate.target);
    this.triggers = triggerSpecsOf(spec);
    this.status = carried?.status ?? {
      route: this.route,
      workflowId,
      strategy: spec.strategy,
      phase: 'starting',
      shareBps: 0,
      paused: false,
      awaitingApproval: false,
      stable: '',
      candidate: this.candidateName,
      routingVersion: 0,
      startedAt: new Date().toISOString(),
      decisions: [],
      triggers: [],
      steps: [],
    };
    this.promoteRequest = carried?.pending.promote;
    this.approvedBy = carried?.pending.approvedBy;
    this.previousStableSlot = carried?.claim.stableSlot ?? 'blue';
    this.candidateSlot = carried?.claim.candidateSlot ?? 'green';
    this.lastTriggerCheck = carried?.lastTriggerCheckMs ?? 0;
    this.step = carried?.step ?? 0;
    this.promotedBy = carried?.promotedBy ?? 'policy';
    this.lastEvidenceMs = carried?.lastEvidenceMs;
    // Set by claimRoute() in a first run.
    this.claim = carried?.claim ?? { stable: '', stableSlot: 'blue', candidateSlot: 'green' };
    this.startedMs = carried?.startedMs ?? 0;
  }

  /**
   * Continues as new when the server suggests it, at the top of a phase's loop (no activity of the story
   * running, the scoring batch settled). Not while a handler runs: the promote and approve Updates answer
   * only once the story acted, so waiting for them here would wait forever; the next check tries again.
   * Alerts still on their way are delivered first. The story then goes on in the next run from `at`.
   */
  async maybeContinue(position: RolloutPosition): Promise<void> {
    if (!workflowInfo().continueAsNewSuggested || this.rollbackRequest || !allHandlersFinished()) return;
    if (!patched(CONTINUE_AS_NEW)) return;
    await Promise.all([...this.pendingAlerts]);
    if (this.rollbackRequest || !allHandlersFinished()) return;
    const generation = (this.status.generation ?? 0) + 1;
    const carry: RolloutCarry = {
      generation,
      firstRunId: this.keyBase,
      legacyWebhookUrl: this.legacyWebhookUrl,
      legacyApprovalHold: this.legacyApprovalHold,
      bounded: this.bounded,
      // A rollout from before POLICY_RESOLVED_AT_START carries what it decides on now, resolved.
      policy: resolvePolicyConfig(this.policy ?? this.spec.policy),
      claim: {
        stable: this.claim.stable,
        stableSlot: this.previousStableSlot,
        candidateSlot: this.candidateSlot,
      },
      startedMs: this.startedMs,
      step: this.step,
      promotedBy: this.promotedBy,
      lastEvidenceMs: this.lastEvidenceMs,
      lastTriggerCheckMs: this.lastTriggerCheck,
      pending: { promote: this.promoteRequest, approvedBy: this.approvedBy },
      at: position,
      status: { ...this.status, generation, firstRunId: this.keyBase },
    };
    log.info('continuing as new', {
      generation,
      phase: position.phase,
      historyLength: workflowInfo().historyLength,
    });
    await continueAsNew<typeof rolloutWorkflow>(this.input, carry);
  }

  /** Updates still waiting (a rollback or a promote answered with the outcome) answer before the run closes. */
  async closing(result: RolloutOutcome): Promise<RolloutOutcome> {
    await condition(allHandlersFinished);
    return result;
  }

  /** Waits for the next tick, waking early for a rollback (which then throws), a promotion or `wake`. */
  async tick(ms: number, summary: string, wake: () => boolean = () => false): Promise<void> {
    await condition(
      () => this.rollbackRequest !== undefined || this.promoteRequest !== undefined || wake(),
      Math.max(ms, 1),
      { summary },
    );
    if (this.rollbackRequest) throw this.rollbackRequest;
  }

  async checkTriggers(tag: 'shadow' | 'canary' | 'stable', sinceMs: number): Promise<void> {
    const now = Date.now();
    if (now - this.lastTriggerCheck < this.spec.triggers.interval) return;
    this.lastTriggerCheck = now;
    const metrics = await acts.triggerMetrics.executeWithOptions(
      { ...DURABLE, summary: `trigger metrics (${tag})` },
      [
        {
          route: this.route,
          tag,
          sinceMs,
          nowMs: now,
          triggers: this.triggers,
          target: tag === 'stable' ? this.candidateName : undefined,
          ...(this.status.scoring && tag === 'canary' ? { candidateOwnEvidence: true } : {}),
        },
      ],
    );
    const { fired, results } = evaluateTriggers(this.triggers, metrics);
    this.status.triggers = results;
    if (fired.length > 0) {
      await this.record(this.status.phase, {
        action: 'rollback',
        policy: 'triggers',
        reasons: fired.map((f) => `trigger ${f.reason}`),
        stats: Object.fromEntries(fired.map((f) => [f.metric, f.value])),
      });
      void this.alert('trigger', `Trigger fired on ${this.route}: ${fired.map((f) => f.reason).join('; ')}`);
      throw new RollbackRequested(`trigger fired: ${fired.map((f) => f.reason).join('; ')}`, 'trigger', {
        triggers: fired as unknown as Record<string, unknown>[],
      });
    }
  }

  async setShare(bps: number, by: string): Promise<void> {
    const from = this.status.shareBps;
    await this.changeRouting(
      { canaryBps: bps },
      `canary share ${bpsText(from)} -> ${bpsText(bps)} (by ${by})`,
    );
    this.status.shareBps = bps;
    this.status.hold = undefined;
    this.status.steps.push({ at: new Date().toISOString(), fromBps: from, toBps: bps, by });
    this.publish();
  }

  async changeRouting(patch: Record<string, unknown>, reason: string): Promise<void> {
    this.step += 1;
    this.status.routingVersion = await acts.applyRouting.executeWithOptions({ ...ROUTING, summary: reason }, [
      {
        route: this.route,
        owner: this.workflowId,
        idempotencyKey: `${this.keyBase}:${this.step}`,
        expectedVersion: this.status.routingVersion,
        patch,
        actor: this.workflowId,
        reason,
      },
    ]);
  }

  /** Ends ownership of a route this rollout leaves as it is (shadow-only report, or a completed rollout). */
  async releaseRoute(reason: string): Promise<void> {
    await acts.releaseRoute({
      route: this.route,
      owner: this.workflowId,
      idempotencyKey: `${this.keyBase}:release`,
      expectedVersion: this.status.routingVersion,
      actor: this.workflowId,
      reason,
    });
  }

  async restore(reason: string, key: string): Promise<void> {
    this.status.routingVersion = await acts.restoreStable.executeWithOptions(
      { ...ROUTING, summary: `restore ${this.route} to its stable slot` },
      [
        {
          route: this.route,
          owner: this.workflowId,
          idempotencyKey: `${this.keyBase}:restore:${key}`,
          stableSlot: this.previousStableSlot,
          actor: this.workflowId,
          reason,
        },
      ],
    );
    this.status.shareBps = 0;
  }

  async rollBack(req: RollbackRequested): Promise<RolloutOutcome> {
    const reason = `${req.reason} (by ${req.actor})`;
    await CancellationScope.nonCancellable(() => this.restore(reason, 'rollback'));
    this.status.stable = this.claim.stable;
    const result = this.finish({
      result: 'rolled_back',
      reason,
      evidence: req.evidence,
      shadow: this.status.shadow,
    });
    // The routing is already restored; the alert may take its retries without holding anything back.
    await this.alert(
      'rollback',
      `Rolled back ${this.candidateName} on ${this.route}: ${reason}`,
      req.evidence,
    );
    return result;
  }

  finish(partial: Omit<RolloutOutcome, 'route' | 'finalShareBps' | 'stable' | 'at'>): RolloutOutcome {
    this.outcome = {
      route: this.route,
      finalShareBps: this.status.shareBps,
      stable: this.status.stable,
      at: new Date().toISOString(),
      ...partial,
    };
    this.status.outcome = this.outcome;
    this.setPhase(
      partial.result === 'completed'
        ? 'completed'
        : partial.result === 'rolled_back'
          ? 'rolled_back'
          : partial.result === 'cancelled'
            ? 'cancelled'
            : 'shadow-report',
    );
    return this.outcome;
  }

  async record(phase: Phase, decision: Decision): Promise<void> {
    const at = new Date().toISOString();
    this.status.decisions.push({ ...decision, at, phase, shareBps: this.status.shareBps });
    if (this.status.decisions.length > 10) this.status.decisions.shift();
    this.status.decisionSummary = countDecision(this.status.decisionSummary, { ...decision, at });
    this.publish();
    await acts.recordDecision.executeWithOptions(
      { ...DURABLE, summary: `${decision.action}: ${decision.reasons[0] ?? ''}`.slice(0, 200) },
      [
        {
          route: this.route,
          workflowId: this.workflowId,
          runId: this.runId,
          phase,
          shareBps: this.status.shareBps,
          action: decision.action,
          policy: decision.policy,
          reasons: decision.reasons,
          stats: decision.stats,
        },
      ],
    );
  }

  alert(kind: AlertEvent['kind'], title: string, details?: Record<string, unknown>): Promise<void> {
    const sent = (async () => {
      try {
        const target = this.spec.alerts.webhookUrl ?? channelsFor(this.spec.alerts.channels, kind);
        await alerts.sendAlert(target, {
          kind,
          route: this.route,
          workflowId: this.workflowId,
          title,
          details,
        });
      } catch (err) {
        log.warn('alert could not be delivered', { kind, error: (err as Error).message });
      }
    })();
    this.pendingAlerts.add(sent);
    void sent.finally(() => this.pendingAlerts.delete(sent));
    return sent;
  }

  setPhase(phase: Phase): void {
    this.status.phase = phase;
    if (phase !== 'canary') this.status.hold = undefined;
    this.publish();
  }

  /** A new step (or a person's resume): the step's deadline counts afresh, and a deadline's hold ends. */
  restartStepDeadline(): void {
    if (!this.deadlines) return;
    this.deadlines.stepFromMs = Date.now();
    this.deadlines.stepPassed = false;
    if (this.status.deadline?.holding) {
      this.status.deadline = { ...this.status.deadline, holding: false };
      this.status.paused = false;
    }
  }

  /**
   * Search attributes, memo and the UI's "current details" (rollout-publish.ts).
   */
  publish(): void {
    publishStatus(this);
  }
}
