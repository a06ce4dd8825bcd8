import { recordedErrorClass, requestedMaxTokens } from '../providers/blame';
import type { Logger } from '../../logger';
import { ProviderError, keyOf, type ChainResult, type FallbackChain } from '../providers';
import type { RequestEvent, ShadowPair } from '../../store/event-writer';
import { candidateOf, candidateSlotOf, type RouteState } from '../../store/routing-state';
import { shouldShadow } from './assignment';
import type { RouterMetrics } from './prometheus';
import type { CapturePolicy } from './capture';
import { answerOf } from './answer';
import type { RouteDecision, RouterRequest } from './types';

/**
 * Shadow calls: for a sampled share of STABLE requests, the candidate answers the same messages too; its
 * answer is recorded (tag `shadow`, same request id) and paired with the stable one for comparison, and
 * never served.
 *
 * Isolation from the served request, by construction:
 * - the shadow is started on a later turn of the event loop (`setImmediate`), after the served call was
 *   dispatched, and nothing on the response path awaits it;
 * - it has its own timeout, and a concurrency cap: when `maxConcurrent` shadows are in flight, new ones
 *   are skipped and counted rather than queued (a slow candidate must not pile up memory or sockets);
 * - its promise never rejects.
 * Only the candidate's primary target is called (not its fallbacks): a shadow measures the candidate, and a
 * fallback answering in its place would compare the stable model with itself.
 */
export interface ShadowOutcome {
  /** 'ok', an error class, or 'skipped' (concurrency cap). */
  outcome: string;
  target: string;
  latencyMs?: number;
  /** A shadow pair was recorded (both the stable and the shadow call succeeded). */
  paired: boolean;
}

export interface ShadowHandle {
  readonly outcome: Promise<ShadowOutcome>;
  /** Tells the shadow how the served call ended: the target that answered, or undefined on failure. */
  stableDone(target: string | undefined): void;
}

export interface ShadowRunnerOptions {
  chain: FallbackChain;
  timeoutMs: number;
  maxConcurrent: number;
  record: (event: RequestEvent) => void;
  recordPair: (pair: ShadowPair) => void;
  metrics: RouterMetrics;
  capture: CapturePolicy;
  log: Logger;
}

export class ShadowRunner {
  private inFlight = 0;
  private skipped = 0;
  private readonly pending = new Set<Promise<ShadowOutcome>>();

  constructor(private readonly options: ShadowRunnerOptions) {}

  /** Starts a shadow for this request when the route samples it; undefined when none is made. */
  maybeStart(
    state: RouteState,
    decision: RouteDecision,
    request: RouterRequest,
    random: () => number,
  ): ShadowHandle | undefined {
    if (decision.tag !== 'stable' || !(state.shadowRate > 0)) return undefined;
    const candidate = candidateOf(state);
    if (!candidate || !shouldShadow(state.shadowRate, random)) return undefined;
    const target = request.params
      ? { ...candidate.target, params: { ...request.params, ...candidate.target.params } }
      : candidate.target;
    const key = keyOf(target);
    const { metrics } = this.options;
    if (this.inFlight >= this.options.maxConcurrent) {
      this.skipped++;
      metrics.shadow(decision.route, key, 'skipped');
      return {
        outcome: Promise.resolve({ outcome: 'skipped', target: key, paired: false }),
        stableDone() {},
      };
    }
    this.inFlight++;

    let resolveStable!: (target: string | undefined) => void;
    const stable = new Promise<string | undefined>((resolve) => (resolveStable = resolve));
    const outcome = new Promise<ShadowOutcome>((resolve) => {
      setImmediate(() => resolve(this.run(state, decision, request, target, key, stable)));
    });
    this.pending.add(outcome);
    void outcome.finally(() => this.pending.delete(outcome));
    return { outcome, stableDone: resolveStable };
  }

  private async run(
    state: RouteState,
    decision: RouteDecision,
    request: RouterRequest,
    target: RouteState['blue']['target'],
    key: string,
    stable: Promise<string | undefined>,
  ): Promise<ShadowOutcome> {
    const { chain, timeoutMs, capture, metrics } = this.options;
    const start = performance.now();
    const event: RequestEvent = {
      requestId: decision.requestId,
      route: decision.route,
      tag: 'shadow',
      slot: candidateSlotOf(state),
      target: key,
      fallbackDepth: 0,
      latencyMs: 0,
      errorClass: null,
      routingVersion: decision.routingVersion,
      referenceId: request.referenceId ?? null,
      caller: request.caller ?? null,
      clientRequestId: request.clientRequestId ?? null,
    };
    if (capture.captures(decision.route, state)) event.prompt = capture.prompt(request.messages);
    let result: ChainResult | undefined;
    try {
      // No caller signal: the served request going away does not cancel its shadow, which still measures.
      // The whole request (tools included): a tool call is recorded and compared, never executed.
      result = await chain.complete([target], request.messages, {
        timeoutMs,
        requestId: decision.requestId,
        request: request.openai,
      });
      event.latencyMs = performance.now() - start;
      event.inputTokens = result.usage.inputTokens;
      event.outputTokens = result.usage.outputTokens;
      event.costUsd = result.costUsd;
      event.finishReason = result.finishReason;
      if (event.prompt !== undefined) {
        event.answer = answerOf(result);
        if (result.toolCalls) event.toolCalls = result.toolCalls;
      }
    } catch (thrown) {
      event.latencyMs = performance.now() - start;
      // Classified as for the served call (a refusal is `refused_<kind>`, compared per arm).
      event.errorClass =
        thrown instanceof ProviderError
          ? recordedErrorClass(
              thrown.errorClass,
              { maxTokens: requestedMaxTokens({ request: request.openai }, target), timeoutMs },
              thrown.detail,
            )
          : 'server_error';
      if (!(thrown instanceof ProviderError))
        this.options.log.warn({ err: thrown }, 'shadow call failed unexpectedly');
    } finally {
      this.inFlight--;
    }
    const outcome = event.errorClass ?? 'ok';
    try {
      this.options.record(event);
      metrics.call(decision.route, 'shadow', key, outcome, event.latencyMs, 0);
      metrics.shadow(decision.route, key, outcome);
      let paired = false;
      if (result) {
        // The pair must follow both events into the writer: wait for the served call to be recorded.
        const stableTarget = await stable;
        if (stableTarget !== undefined) {
          this.options.recordPair({
            route: decision.route,
            requestId: decision.requestId,
            stableTarget,
            shadowTarget: key,
          });
          paired = true;
        }
      }
      return { outcome, target: key, latencyMs: event.latencyMs, paired };
    } catch (err) {
      this.options.log.warn({ err }, 'recording a shadow call failed');
      return { outcome, target: key, latencyMs: event.latencyMs, paired: false };
    }
  }

  stats(): { inFlight: number; skipped: number } {
    return { inFlight: this.inFlight, skipped: this.skipped };
  }

  /** Resolves when every shadow started so far has finished (or after `timeoutMs`). */
  async idle(timeoutMs = Number.POSITIVE_INFINITY): Promise<void> {
    if (this.pending.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const all = Promise.allSettled([...this.pending]).then(() => undefined);
    if (!Number.isFinite(timeoutMs)) return all;
    await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    if (timer) clearTimeout(timer);
  }
}
