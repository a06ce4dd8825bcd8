/**
 * A span per gateway request with the OpenTelemetry GenAI semantic-convention attributes, and a child span per
 * provider attempt (a failed primary, a retry, the fallback that answered). Only when tracing is on (OTEL_*):
 * off, `startRequestSpan` returns undefined after one null check, and nothing of OpenTelemetry is loaded.
 *
 * Attempt spans are written when the answer is known, laid end to end from the request's start by their
 * measured latencies: the chain reports each attempt's duration, not its clock time.
 */
import type { Span } from '@opentelemetry/api';
import { activeTracing, type Tracing } from '../../control-plane/telemetry/tracing';
import type { Attempt } from '../providers/errors';
import type { ChainResult } from '../providers/fallback-chain';
import type { ShadowOutcome } from '../router/shadow';

export interface RequestSpan {
  /**
   * The answer: its target, arm and usage on the span, and a child span per attempt; with `shadow`, a child
   * span for the shadow call once it settles (after the answer: a shadow never holds the request).
   */
  answered(
    decision: { tag: string; requestId: string },
    result: ChainResult,
    shadow?: Promise<ShadowOutcome>,
  ): void;
  /** A failure: the error class on the span (and the attempts, when the error carries them). Only the first
   * of `answered` and `failed` counts. */
  failed(errorClass: string, attempts?: readonly Attempt[]): void;
}

const providerOf = (target: string) => target.slice(0, target.indexOf(':'));
const modelOf = (target: string) => target.slice(target.indexOf(':') + 1);

export function startRequestSpan(route: string, stream: boolean): RequestSpan | undefined {
  const tracing = activeTracing();
  if (!tracing) return undefined;
  const startMs = Date.now();
  const span = tracing.tracer.startSpan(`chat ${route}`, {
    startTime: startMs,
    attributes: {
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': route,
      'model_rollout.route': route,
      'model_rollout.stream': stream,
    },
  });
  let ended = false;
  return {
    answered(decision, result, shadow) {
      if (ended) return;
      ended = true;
      if (shadow) void shadow.then((outcome) => shadowSpan(tracing, span, startMs, outcome));
      const target = `${result.target.provider}:${result.target.model}`;
      span.setAttributes({
        'gen_ai.provider.name': result.target.provider,
        'gen_ai.response.model': result.target.model,
        'gen_ai.response.id': decision.requestId,
        'gen_ai.usage.input_tokens': result.usage.inputTokens,
        'gen_ai.usage.output_tokens': result.usage.outputTokens,
        'gen_ai.response.finish_reasons': [result.finishReason],
        'model_rollout.arm': decision.tag,
        'model_rollout.target': target,
        // A variant is a target until prompt layers exist (issue 21).
        'model_rollout.variant': target,
        'model_rollout.fallback_depth': result.fallbackDepth,
        'model_rollout.cost_usd': result.costUsd,
      });
      attemptSpans(tracing, span, startMs, result.attempts);
      span.end();
    },
    failed(errorClass, attempts) {
      if (ended) return;
      ended = true;
      span.setAttribute('error.type', errorClass);
      span.setStatus({ code: tracing.api.SpanStatusCode.ERROR, message: errorClass });
      if (attempts) attemptSpans(tracing, span, startMs, attempts);
      span.end();
    },
  };
}

function attemptSpans(tracing: Tracing, parent: Span, startMs: number, attempts: readonly Attempt[]): void {
  const { trace, context } = tracing.api;
  let at = startMs;
  attempts.forEach((a, index) => {
    const child = tracing.tracer.startSpan(
      `chat ${modelOf(a.target)}`,
      {
        startTime: at,
        attributes: {
          'gen_ai.operation.name': 'chat',
          'gen_ai.provider.name': providerOf(a.target),
          'gen_ai.request.model': modelOf(a.target),
          'model_rollout.attempt': index + 1,
          ...(a.status !== undefined ? { 'http.response.status_code': a.status } : {}),
          ...(a.errorClass ? { 'error.type': a.errorClass } : {}),
        },
      },
      trace.setSpan(context.active(), parent),
    );
    if (a.errorClass) child.setStatus({ code: tracing.api.SpanStatusCode.ERROR, message: a.errorClass });
    at += a.latencyMs;
    child.end(at);
  });
}

function shadowSpan(tracing: Tracing, parent: Span, startMs: number, shadow: ShadowOutcome): void {
  const { trace, context } = tracing.api;
  const failed = shadow.outcome !== 'ok' && shadow.outcome !== 'skipped';
  const child = tracing.tracer.startSpan(
    `shadow ${modelOf(shadow.target)}`,
    {
      startTime: startMs,
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': providerOf(shadow.target),
        'gen_ai.request.model': modelOf(shadow.target),
        'model_rollout.shadow.outcome': shadow.outcome,
        'model_rollout.shadow.paired': shadow.paired,
        ...(failed ? { 'error.type': shadow.outcome } : {}),
      },
    },
    trace.setSpan(context.active(), parent),
  );
  if (failed) child.setStatus({ code: tracing.api.SpanStatusCode.ERROR, message: shadow.outcome });
  child.end(shadow.latencyMs !== undefined ? startMs + shadow.latencyMs : Date.now());
}
