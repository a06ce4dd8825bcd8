import {
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  log,
  workflowInfo,
} from '@temporalio/workflow';
import type { AlertEvent } from '../../activities/alerts';
import { channelsFor } from '../../src/control-plane/alerts/kinds';
import type { RolloutSpec } from '../../src/decision/config/rollout-spec';
import { describeStep, entryOf, shareOf, type Step } from '../../src/decision/config/steps';
import { formatTarget } from '../../src/decision/config/target';
import {
  evaluateTriggers,
  restartStep,
  type Decision,
  type DeadlineState,
  type ResolvedPolicy,
  type TriggerSpec,
} from '../../src/decision/policy';
import { DURABLE, ROUTING } from '../activity-options';
import { triggerSpecsOf } from '../triggers';
import type { RolloutOutcome, RolloutPhase as Phase, RolloutStatus } from '../messages';
import { acts, alerts } from './activities';
import { askRollbackHooks, emitEvent, postRollout } from './gates';
import { countDecision, type CanaryState, type RolloutCarry, type WatchState } from './carry';
import { bpsText, publishStatus } from './publish';

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

export interface RunOptions {
  input: unknown;
  spec: RolloutSpec;
  carried?: RolloutCarry;
}

/**
 * The state of one run of a rollout and what every step does with it: routing changes, decisions, alerts,
 * the wait between checks, the triggers, continue-as-new, the end. The steps are in workflows/steps/ (one
 * file per kind); the story that walks them and the message handlers in workflows/rollout.ts. This file
 * imports no step.
 */
export class RolloutRun {
  readonly input: unknown;
  readonly spec: RolloutSpec;
  /** The list it walks (the first run's, carried). */
  readonly steps: readonly Step[];
  readonly route: string;
  readonly candidateName: string;
  readonly triggers: TriggerSpec[];
  readonly workflowId: string;
  readonly runId: string;
  /** The first run's id: idempotency keys stay unique across runs. */
  readonly keyBase: string;
  /** The policy every decision uses, resolved when the rollout started (set before the first step). */
  policy: ResolvedPolicy;
  readonly status: RolloutStatus;
  rollbackRequest: RollbackRequested | undefined;
  promoteRequest: { toFull: boolean; actor: string } | undefined;
  approvedBy: string | undefined;
  outcome: RolloutOutcome | undefined;
  claim: RolloutCarry['claim'];
  startedMs: number;
  /** Routing changes so far, for idempotency keys. */
  changes: number;
  /** Who ended the last step: 'policy', or the actor of a promote. The next share change says so. */
  advancedBy: string;
  /** A `promote --full` is under way: the story passes the steps before the promotion, up to a gate. */
  toFull: boolean;
  lastTriggerCheck: number;
  /** When the candidate last got a score (workflow time). */
  lastEvidenceMs: number | undefined;
  watch: WatchState;
  canary: CanaryState | undefined;
  deadlines: DeadlineState;
  /** The step the story is at (what continue-as-new carries, with the step's own state). */
  index: number;
  /** The step has done what it does on entry and waits (a routing change it made is in place). */
  waiting = false;
  /** What publishStatus() last upserted. */
  published: { attributes: string; memo: string } | undefined;
  /** Alerts not waited for, delivered before continuing as new. */
  readonly pendingAlerts = new Set<Promise<void>>();
  /** Calls to `event` webhooks not waited for (none without such hooks), delivered before the run ends. */
  readonly pendingHooks = new Set<Promise<void>>();

  constructor(o: RunOptions) {
    const { carried, spec } = o;
    const { workflowId, runId } = workflowInfo();
    this.input = o.input;
    this.spec = spec;
    this.steps = carried?.steps ?? spec.steps;
    this.policy = carried?.policy ?? spec.policy;
    this.workflowId = workflowId;
    this.runId = runId;
    this.keyBase = carried?.firstRunId ?? runId;
    this.route = spec.route;
    this.candidateName = formatTarget(spec.candidate.target);
    this.triggers = triggerSpecsOf(spec);
    const now = Date.now();
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
      startedAt: new Date(now).toISOString(),
      plan: this.steps.map((s) => ({
        kind: entryOf(s).kind,
        description: describeStep(s),
        share: shareOf(s),
      })),
      decisions: [],
      triggers: [],
      steps: [],
    };
    this.promoteRequest = carried?.pending.promote;
    this.approvedBy = carried?.pending.approvedBy;
    // Set by claimRoute() in a first run.
    this.claim = carried?.claim ?? { stable: '', stableSlot: 'blue', candidateSlot: 'green' };
    this.startedMs = carried?.startedMs ?? now;
    this.changes = carried?.changes ?? 0;
    this.advancedBy = carried?.advancedBy ?? 'policy';
    this.toFull = carried?.toFull ?? false;
    this.lastTriggerCheck = carried?.lastTriggerCheckMs ?? 0;
    this.lastEvidenceMs = carried?.lastEvidenceMs;
    this.watch = carried?.watch ?? { tag: 'shadow', sinceMs: now };
    this.canary = carried?.canary;
    this.deadlines = carried?.deadlines ?? { stepFromMs: now, stepPassed: false, rolloutPassed: false };
    this.index = carried?.at.index ?? 0;
  }

  /** Whether the candidate has been promoted (it serves all traffic as the stable slot). */
  get promoted(): boolean {
    return this.status.shareBps >= 10_000;
  }

  /** The story enters step `index` (or resumes it in a continued run): status, phase, the step's deadline. */
  enterStep(index: number, resumed: boolean): void {
    this.index = index;
    this.waiting = false;
    const step = this.steps[index];
    const { kind, value, def } = entryOf(step);
    if (!resumed) {
      this.status.step = {
        index,
        kind,
        description: describeStep(step),
        share: shareOf(step),
        startedAt: new Date().toISOString(),
      };
      this.restartStepDeadline();
    }
    this.setPhase(def.phase(value as never));
    if (!resumed) emitEvent(this, 'step', { index, stepKind: kind });
  }

  /**
   * A person's promote, if one came: consumed, and the step ends. The next share change is by that person;
   * with `toFull` the story passes the steps before the promotion (up to a gate such as an approval).
   */
  takePromote(): { toFull: boolean; actor: string } | undefined {
    const req = this.promoteRequest;
    if (!req) return undefined;
    this.promoteRequest = undefined;
    this.advancedBy = req.actor;
    if (req.toFull) this.toFull = true;
    this.restartStepDeadline(); // a person acted: a deadline's hold ends
    return req;
  }

  /**
   * Continues as new when the server suggests it, at the top of a step's loop (no activity of the story
   * running, the scoring batch settled), carrying `state`, the step's own. Not while a handler runs: the
   * promote and approve Updates answer only once the story acted, so waiting for them here would wait
   * forever; the next check tries again. Alerts still on their way are delivered first.
   */
  async maybeContinue(state: unknown): Promise<void> {
    if (!workflowInfo().continueAsNewSuggested || this.rollbackRequest || !allHandlersFinished()) return;
    await Promise.all([...this.pendingAlerts, ...this.pendingHooks]);
    if (this.rollbackRequest || !allHandlersFinished()) return;
    const generation = (this.status.generation ?? 0) + 1;
    const carry: RolloutCarry = {
      generation,
      firstRunId: this.keyBase,
      steps: [...this.steps],
      policy: this.policy,
      claim: this.claim,
      startedMs: this.startedMs,
      changes: this.changes,
      advancedBy: this.advancedBy,
      toFull: this.toFull,
      lastEvidenceMs: this.lastEvidenceMs,
      lastTriggerCheckMs: this.lastTriggerCheck,
      watch: this.watch,
      canary: this.canary,
      deadlines: this.deadlines,
      pending: { promote: this.promoteRequest, approvedBy: this.approvedBy },
      at: { index: this.index, state },
      status: { ...this.status, generation, firstRunId: this.keyBase },
    };
    log.info('continuing as new', {
      generation,
      step: this.index,
      historyLength: workflowInfo().historyLength,
    });
    // Untyped on purpose: this file imports no workflow (the story imports the run, not the reverse).
    await continueAsNew(this.input, carry);
  }

  /** Updates still waiting (a rollback or a promote answered with the outcome) answer before the run closes. */
  async closing(result: RolloutOutcome): Promise<RolloutOutcome> {
    await postRollout(this); // with no post-rollout or event webhooks: nothing
    await condition(allHandlersFinished);
    return result;
  }

  /** Waits for the next tick, waking early for a rollback (which then throws), a promotion or `wake`. */
  async tick(ms: number, summary: string, wake: () => boolean = () => false): Promise<void> {
    this.waiting = true;
    await condition(
      () => this.rollbackRequest !== undefined || this.promoteRequest !== undefined || wake(),
      Math.max(ms, 1),
      { summary },
    );
    if (this.rollbackRequest) throw this.rollbackRequest;
  }

  /** The triggers on what `watch` says (at most once per `triggers.interval`); a firing one rolls back. */
  async checkTriggers(): Promise<void> {
    const now = Date.now();
    if (now - this.lastTriggerCheck < this.spec.triggers.interval) return;
    this.lastTriggerCheck = now;
    const { tag, sinceMs } = this.watch;
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
          ...(tag === 'canary' ? { candidateOwnEvidence: true } : {}),
        },
      ],
    );
    const { fired, results } = evaluateTriggers(this.triggers, metrics);
    this.status.triggers = results;
    if (fired.length > 0) {
      await this.record({
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
    const asked = await askRollbackHooks(this); // the `rollback` webhooks, in the manner of Flagger's
    if (asked) {
      const reason = `rollback webhook '${asked.hook}' answered ${asked.answer.status}`;
      await this.record({
        action: 'rollback',
        policy: 'webhook',
        reasons: [reason],
        stats: { status: asked.answer.status },
      });
      throw new RollbackRequested(reason, 'webhook', {
        hook: asked.hook,
        status: asked.answer.status,
        answer: asked.answer.answer,
      });
    }
  }

  /** A canary share below 100%: the triggers then watch the canary from its first share on. */
  async setShare(bps: number): Promise<void> {
    const from = this.status.shareBps;
    const by = this.advancedBy;
    await this.changeRouting(
      { canaryBps: bps },
      `canary share ${bpsText(from)} -> ${bpsText(bps)} (by ${by})`,
    );
    this.status.shareBps = bps;
    this.status.hold = undefined;
    this.status.steps.push({ at: new Date().toISOString(), fromBps: from, toBps: bps, by });
    this.advancedBy = 'policy';
    this.publish();
  }

  /** The promotion: the candidate's slot becomes stable; the triggers then watch it as the stable model. */
  async promote(): Promise<void> {
    const from = this.status.shareBps;
    const by = this.advancedBy;
    await this.changeRouting(
      { stableSlot: this.claim.candidateSlot, canaryBps: 0 },
      `promote ${this.candidateName} to stable (100%)`,
    );
    this.status.steps.push({ at: new Date().toISOString(), fromBps: from, toBps: 10_000, by });
    this.status.shareBps = 10_000;
    this.status.stable = this.candidateName;
    this.status.hold = undefined;
    this.advancedBy = 'policy';
    this.toFull = false;
    this.watch = { tag: 'stable', sinceMs: Date.now() };
    this.lastTriggerCheck = 0;
    this.publish();
    void this.alert('promotion', `${this.candidateName} promoted to stable on ${this.route}`);
  }

  async changeRouting(patch: Record<string, unknown>, reason: string): Promise<void> {
    this.changes += 1;
    this.status.routingVersion = await acts.applyRouting.executeWithOptions({ ...ROUTING, summary: reason }, [
      {
        route: this.route,
        owner: this.workflowId,
        idempotencyKey: `${this.keyBase}:${this.changes}`,
        expectedVersion: this.status.routingVersion,
        patch,
        actor: this.workflowId,
        reason,
      },
    ]);
  }

  /** Ends ownership of a route this rollout leaves as it is (a report, or a completed rollout). */
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
          stableSlot: this.claim.stableSlot,
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
    this.status.step = undefined;
    this.status.paused = false;
    this.status.awaitingApproval = false;
    this.setPhase(partial.result);
    emitEvent(this, 'outcome', { result: partial.result, reason: partial.reason });
    return this.outcome;
  }

  /** Records a decision in the status and the audit table, at the current phase and share. */
  async record(decision: Decision): Promise<void> {
    const at = new Date().toISOString();
    const phase = this.status.phase;
    this.status.decisions.push({ ...decision, at, phase, shareBps: this.status.shareBps });
    if (this.status.decisions.length > 10) this.status.decisions.shift();
    this.status.decisionSummary = countDecision(this.status.decisionSummary, { ...decision, at });
    this.publish();
    emitEvent(this, 'decision', {
      action: decision.action,
      policy: decision.policy,
      reasons: decision.reasons,
    });
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

  /** Sends an alert to the spec's channels for its kind (names only: the URLs live on the worker). */
  alert(kind: AlertEvent['kind'], title: string, details?: Record<string, unknown>): Promise<void> {
    const sent = (async () => {
      try {
        await alerts.sendAlert(channelsFor(this.spec.alerts.channels, kind), {
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
    restartStep(this.deadlines, Date.now());
    if (this.status.deadline?.holding) {
      this.status.deadline = { ...this.status.deadline, holding: false };
      this.status.paused = false;
    }
  }

  /** Search attributes, memo and the UI's "current details" (publish.ts). */
  publish(): void {
    this.published = publishStatus(
      {
        route: this.route,
        candidate: this.candidateName,
        strategy: this.spec.strategy,
        status: this.status,
        outcome: this.outcome,
      },
      this.published,
    );
  }
}
