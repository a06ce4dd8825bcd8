import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  log,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { GuardianWatch } from '../activities/guardian';
import { channelsFor } from '../src/control-plane/alerts/kinds';
import {
  compareWithPrevious,
  evaluateTriggers,
  type ComparisonResult,
  type TriggerResult,
} from '../src/decision/policy';
import { RolloutPhase, RolloutRoute } from '../src/control-plane/temporal/search-attributes';
import { ALERTS, DURABLE } from './activity-options';

const acts = proxyActivities<Activities>(DURABLE);
const alerts = proxyActivities<Activities>(ALERTS);

export interface GuardianSwitch {
  at: string;
  from: string;
  to: string;
  reason: string;
}

export interface GuardianState extends GuardianWatch {
  /** Only data since the current stable model took over counts. */
  sinceMs: number;
  checks?: number;
  /** The latest switches, newest last (at most SWITCHES_KEPT: it continues as new for weeks). */
  switches?: GuardianSwitch[];
  /** Every switch counted, across runs. */
  switchCount?: number;
  /** How many of the latest switches `switches` keeps (default SWITCHES_KEPT). */
  keepSwitches?: number;
  lastResults?: TriggerResult[];
  /** The last comparison of refusal and attempt-error rates with the previous model's. */
  lastComparisons?: ComparisonResult[];
  /** Runs of this workflow so far (grows with each continue-as-new). */
  generation?: number;
  /** Why the last check could not finish (a conflict with a change made meanwhile), if it could not. */
  lastError?: string;
}

/** The latest switches kept in the state; older ones are counted in `switchCount` (and audited in Postgres). */
export const SWITCHES_KEPT = 20;

/** The fields a guardian takes from its input and its `watch` signal; anything else is refused or dropped. */
const WATCH_FIELDS = ['route', 'triggers', 'intervalMs', 'alertChannels', 'sinceMs', 'keepSwitches'] as const;

function watchOf(input: Record<string, unknown>): Partial<GuardianState> {
  return Object.fromEntries(WATCH_FIELDS.filter((k) => k in input).map((k) => [k, input[k]]));
}

export const watchSignal = defineSignal<[GuardianWatch & { sinceMs: number }]>('watch');
export const stopGuardianSignal = defineSignal('stop');
export const guardianStatusQuery = defineQuery<GuardianState>('status');

/**
 * Keeps checking the triggers on a route's live stable model after a rollout has completed, for weeks. When
 * the promoted model degrades, it switches back to the previous slot (if that one was healthy when it last
 * served), alerts and records why. History stays bounded by continuing as new when the server suggests it.
 */
export async function routeGuardianWorkflow(input: GuardianState): Promise<GuardianState> {
  // Alerts go only to channels configured on the worker: a URL in the input is refused, by its field name.
  const forged = Object.keys(input ?? {}).filter((k) => /webhook|url/i.test(k));
  if (forged.length > 0)
    throw ApplicationFailure.nonRetryable(
      `${forged.join(', ')}: a guardian alerts only to channels configured on the worker (alertChannels names them)`,
      'InvalidGuardianInput',
    );
  const state: GuardianState = { checks: 0, switches: [], switchCount: 0, generation: 0, ...input };
  let stop = false;
  setHandler(watchSignal, (watch) => {
    // A signal cannot be refused: only the known fields are taken (a URL never reaches the state).
    Object.assign(state, watchOf((watch ?? {}) as unknown as Record<string, unknown>));
  });
  setHandler(stopGuardianSignal, () => void (stop = true));
  setHandler(guardianStatusQuery, () => state);
  upsertSearchAttributes([
    { key: RolloutRoute, value: state.route },
    { key: RolloutPhase, value: 'guarding' },
  ]);

  while (!stop) {
    await condition(() => stop, state.intervalMs, { summary: 'wait for the next trigger check' });
    if (stop) break;
    await checkAndCarryOn();
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof routeGuardianWorkflow>({
        ...state,
        generation: (state.generation ?? 0) + 1,
      });
    }
  }
  return state;

  /**
   * A guardian runs for weeks: a check that fails for a business reason (the route changed between the read
   * and the switch, or was deleted) is logged and the next check starts afresh from the current state.
   * Infrastructure errors never get here: the activities retry them without limit.
   */
  async function checkAndCarryOn(): Promise<void> {
    try {
      await check();
      state.lastError = undefined;
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      const cause = err.cause instanceof ApplicationFailure ? err.cause : undefined;
      state.lastError = `${cause?.type ?? 'failure'}: ${cause?.message ?? err.message}`;
      log.warn('guardian check failed; carrying on', { route: state.route, error: state.lastError });
    }
  }

  async function check(): Promise<void> {
    state.checks = (state.checks ?? 0) + 1;
    const route = await acts.readRoute(state.route);
    // A running rollout owns the route and guards it with its own triggers.
    if (!route || route.owner) return;
    const now = Date.now();
    const metrics = await acts.triggerMetrics({
      route: state.route,
      tag: 'stable',
      sinceMs: state.sinceMs,
      nowMs: now,
      triggers: state.triggers,
      target: route.stable,
    });
    const { fired: triggered, results } = evaluateTriggers(state.triggers, metrics);
    state.lastResults = results;
    // Refusals and failed attempts are judged against what the previous model showed on this route (a rate
    // that is the application's own, such as malformed requests, was the previous model's too).
    const comparisons = route.candidate
      ? compareWithPrevious(
          ...(await acts
            .guardianComparison({
              route: state.route,
              target: route.stable,
              sinceMs: state.sinceMs,
              nowMs: now,
              previousTarget: route.candidate,
            })
            .then((c) => [c.current, c.previous] as const)),
        )
      : [];
    state.lastComparisons = comparisons;
    const fired: Array<{ metric: string; value: number | null; reason: string }> = [
      ...triggered,
      ...comparisons.filter((c) => c.fired),
    ];
    setCurrentDetails(
      `guarding **${state.route}** (stable ${route.stable}): ${[...results, ...comparisons].map((r) => r.reason).join('; ')}`,
    );
    if (fired.length === 0) return;

    const why = fired.map((f) => f.reason).join('; ');
    if (!route.candidate) {
      await notify(`Trigger fired on ${state.route} (${why}) and there is no other slot to switch to`);
      return;
    }
    // The previous model is only worth switching back to if it was healthy while it last served.
    const before = await acts.triggerMetrics({
      route: state.route,
      tag: 'stable',
      sinceMs: 0,
      nowMs: state.sinceMs,
      triggers: state.triggers,
      target: route.candidate,
    });
    const previous = evaluateTriggers(state.triggers, before);
    if (previous.fired.length > 0) {
      await notify(
        `Trigger fired on ${state.route} (${why}) but ${route.candidate} was unhealthy too (${previous.fired.map((f) => f.reason).join('; ')}); not switching`,
      );
      return;
    }
    const reason = `guardian: ${route.stable} degraded (${why}); switching back to ${route.candidate}`;
    await acts.switchStableSlot({
      route: state.route,
      toSlot: route.candidateSlot,
      expectedVersion: route.version,
      idempotencyKey: `${workflowInfo().workflowId}:${workflowInfo().runId}:${state.checks}`,
      actor: workflowInfo().workflowId,
      reason,
    });
    await acts.recordDecision({
      route: state.route,
      workflowId: workflowInfo().workflowId,
      runId: workflowInfo().runId,
      phase: 'guarding',
      shareBps: 0,
      action: 'rollback',
      policy: null,
      reasons: fired.map((f) => f.reason),
      stats: Object.fromEntries(fired.map((f) => [f.metric, f.value])),
    });
    state.switches = [
      ...(state.switches ?? []),
      { at: new Date(now).toISOString(), from: route.stable, to: route.candidate, reason },
    ].slice(-(state.keepSwitches ?? SWITCHES_KEPT));
    state.switchCount = (state.switchCount ?? 0) + 1;
    state.sinceMs = now;
    await notify(reason);
  }

  async function notify(title: string): Promise<void> {
    await alerts
      .sendAlert(channelsFor(state.alertChannels, 'rollback'), {
        kind: 'rollback',
        route: state.route,
        workflowId: workflowInfo().workflowId,
        title,
      })
      .catch(() => undefined);
  }
}
