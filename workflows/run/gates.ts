/**
 * Calling the webhooks of a rollout (activities/gates.ts does the POST): a call races the rollout's own
 * requests, so a hook that hangs is timed out and retried by Temporal while a rollback goes through at
 * once (the call is cancelled and its result ignored). The lifecycle hooks that are not steps live here
 * too: `event` (every decision, step and outcome, fire and forget), `rollback` (asked at each trigger
 * check; a 2xx answer asks for a rollback) and `post-rollout` (told the outcome). With no webhooks in the
 * spec none of these issues a command, so the histories of rollouts without them replay unchanged.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  log,
  TimeoutFailure,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { HookAnswer, HookPayload, HookType } from '../../activities/gates';
import { sourceOf } from '../../src/decision/analysis/check';
import type { LifecycleHook } from '../../src/decision/config/hooks';
import { entryOf } from '../../src/decision/config/steps';
import type { AnalysisStep } from '../../src/decision/config/steps/analysis';
import type { WebhookStep } from '../../src/decision/config/steps/webhook';
import type { RolloutSpec } from '../../src/decision/config/rollout-spec';
import type { Step } from '../../src/decision/config/steps';
import type { RolloutStatus } from '../messages';
import { acts } from './activities';

/** What of the run the hooks read (run.ts calls into this file, so it names no type of run.ts). */
export interface GateRun {
  readonly route: string;
  readonly workflowId: string;
  readonly candidateName: string;
  readonly spec: RolloutSpec;
  readonly steps: readonly Step[];
  readonly status: RolloutStatus;
  readonly rollbackRequest: unknown;
  readonly pendingHooks: Set<Promise<void>>;
}

export interface HookCall {
  hook: string;
  timeout: number;
  retries: number;
}

/** The hook's answer, or why there was none after Temporal's retries, or that the rollout moved on. */
export type HookResult = { answer: HookAnswer } | { failure: string } | { interrupted: true };

/** Temporal's timeout and retries for one call: `timeout` per attempt, `retries` more attempts. */
export function hookOptions(call: HookCall, summary: string): ActivityOptions {
  return {
    startToCloseTimeout: call.timeout,
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '30 seconds',
      maximumAttempts: call.retries + 1,
    },
    summary: summary.slice(0, 200),
  };
}

/**
 * Runs `call` (an activity) until it settles, a rollback is requested or `wake()` holds; then its result,
 * or undefined (the call is cancelled: a rollback never waits for a hook or a metric source).
 */
export async function interruptible<T>(
  r: GateRun,
  call: () => Promise<T>,
  wake: () => boolean = () => false,
): Promise<{ value: T } | { error: unknown } | undefined> {
  const scope = new CancellationScope();
  let settled: { value: T } | { error: unknown } | undefined;
  void scope.run(call).then(
    (value) => void (settled = { value }),
    (error: unknown) => void (settled = { error }),
  );
  await condition(() => settled !== undefined || r.rollbackRequest !== undefined || wake());
  if (settled === undefined) scope.cancel();
  return settled;
}

/** Why an activity call failed, for status and evidence: the activity's own message, or its timeout. */
export function failureText(err: unknown): string {
  let e: unknown = err;
  while (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof TimeoutFailure) return 'timed out';
  if (e instanceof ApplicationFailure) return e.message;
  return (e as Error)?.message ?? String(e);
}

/** The rollout's state as a hook sees it: names, shares, the step, the latest decision; no secrets. */
export function hookPayload(
  r: GateRun,
  hook: string,
  type: HookType,
  event?: HookPayload['event'],
): HookPayload {
  const s = r.status;
  const last = s.decisions.at(-1);
  return {
    hook,
    type,
    rollout: {
      route: r.route,
      workflowId: r.workflowId,
      phase: s.phase,
      shareBps: s.shareBps,
      stable: s.stable,
      candidate: r.candidateName,
      paused: s.paused,
      step: s.step ? { index: s.step.index, kind: s.step.kind, description: s.step.description } : null,
      lastDecision: last ? { action: last.action, policy: last.policy, reasons: last.reasons } : null,
      outcome: s.outcome ? { result: s.outcome.result, reason: s.outcome.reason } : null,
    },
    ...(event ? { event } : {}),
  };
}

/** Asks a hook, racing the rollout's requests (`wake`: also stop for, say, a person's promote). */
export async function askHook(
  r: GateRun,
  call: HookCall,
  type: HookType,
  wake?: () => boolean,
): Promise<HookResult> {
  const payload = hookPayload(r, call.hook, type);
  const settled = await interruptible(
    r,
    () => acts.callHook.executeWithOptions(hookOptions(call, `${type} webhook '${call.hook}'`), [payload]),
    wake,
  );
  if (!settled) return { interrupted: true };
  if ('value' in settled) return { answer: settled.value };
  const text = failureText(settled.error);
  // Temporal's timeout and the activity's own (just before it) say the same thing: no answer in time.
  const named = text.startsWith(`webhook '${call.hook}'`)
    ? text
    : text === 'timed out'
      ? `webhook '${call.hook}' did not answer (timeout)`
      : `webhook '${call.hook}': ${text}`;
  return { failure: `${named} (after ${call.retries + 1} attempt(s))` };
}

const hooksOf = (r: GateRun, type: LifecycleHook['type']) => r.spec.webhooks.filter((h) => h.type === type);

/** Tells the `event` hooks what happened, without waiting (delivered before the run ends or continues). */
export function emitEvent(r: GateRun, kind: string, details: Record<string, unknown> = {}): void {
  for (const h of hooksOf(r, 'event')) {
    const payload = hookPayload(r, h.hook, 'event', { ...details, kind });
    const sent = acts.callHook
      .executeWithOptions(hookOptions(h, `event '${kind}' to webhook '${h.hook}'`), [payload])
      .then(
        () => undefined,
        (err: unknown) => log.warn('event webhook not delivered', { hook: h.hook, error: failureText(err) }),
      );
    r.pendingHooks.add(sent);
    void sent.finally(() => r.pendingHooks.delete(sent));
  }
}

/** The `rollback` hooks, asked at a trigger check: the first that answers 2xx asks for a rollback. */
export async function askRollbackHooks(
  r: GateRun,
): Promise<{ hook: string; answer: HookAnswer } | undefined> {
  for (const h of hooksOf(r, 'rollback')) {
    const result = await askHook(r, h, 'rollback');
    if ('answer' in result && result.answer.ok) return { hook: h.hook, answer: result.answer };
    if ('interrupted' in result) return undefined;
  }
  return undefined;
}

/** The `post-rollout` hooks, told the outcome; what they answer changes nothing and is logged. */
export async function postRollout(r: GateRun): Promise<void> {
  for (const h of hooksOf(r, 'post-rollout')) {
    const result = await askHook(r, h, 'post-rollout');
    log.info('post-rollout webhook', {
      hook: h.hook,
      ...('answer' in result
        ? { status: result.answer.status }
        : { error: 'failure' in result ? result.failure : 'interrupted' }),
    });
  }
  await Promise.all([...r.pendingHooks]);
}

/**
 * Once, when a rollout with hooks or metric checks starts: the names it uses must be configured on this
 * worker (a spec naming an unknown hook or source is refused by name before the route is claimed).
 */
export async function checkGateNames(r: GateRun): Promise<string[]> {
  const hooks = new Set(r.spec.webhooks.map((h) => h.hook));
  const checks = [...(r.spec.analysis?.checks ?? [])];
  for (const step of r.steps) {
    const { kind, value } = entryOf(step);
    if (kind === 'webhook') hooks.add((value as WebhookStep).hook);
    if (kind === 'analysis') checks.push(...(value as AnalysisStep).checks);
  }
  if (hooks.size === 0 && checks.length === 0) return [];
  const sources = new Map(
    checks.map((c) => [sourceOf(c.provider), 'prometheus' in c.provider ? 'prometheus' : 'web'] as const),
  );
  return acts.checkGateNames.executeWithOptions({ summary: 'check the webhooks and metric sources' }, [
    { hooks: [...hooks], sources: [...sources].map(([name, type]) => ({ name, type })) },
  ]);
}
