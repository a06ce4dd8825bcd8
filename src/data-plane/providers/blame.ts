import type { CallOptions, ErrorClass, Target } from './types';

/**
 * Whose fault a failed call was: the request's (the client's) or the model's. One rule for every place
 * that counts failures (the canary statistics and triggers, read from `request_events`, and the circuit
 * breaker), so a client that sends bad requests, hangs up or asks for more than any model can write in
 * time can neither roll a candidate back nor open a breaker.
 *
 * Client-caused: the upstream refused the request as malformed (400, `bad_request`) or by content policy,
 * the client hung up (`cancelled`), or a JSON call timed out while generating a `max_tokens` larger than
 * a model can write within the timeout at `CLIENT_TIMEOUT_TOKENS_PER_SECOND`. A prompt over a target's
 * context window (`context_length`) is not: the candidate cannot serve a request the stable one can. (The
 * breaker still hands its permit back, as for every class that says nothing about whether the provider is
 * up: a fast, deterministic refusal must not cut a healthy model off.)
 */
export const CLIENT_CAUSED_CLASSES: ReadonlySet<ErrorClass> = new Set<ErrorClass>([
  'bad_request',
  'content_policy',
  'cancelled',
]);

/**
 * A generation rate no served model is expected to beat: a JSON call asking for more tokens than this many
 * per second of its timeout (6 000 with the default 30 s) could time out on any model, so its timeout is
 * the request's. Set high on purpose: a hung candidate's timeouts must still count for every ordinary
 * request (only those with such a `max_tokens` are set aside, on both arms alike).
 */
export const CLIENT_TIMEOUT_TOKENS_PER_SECOND = 200;

/** Prefix of the `request_events.error_class` of a client-caused failure (`client_bad_request`, ...). */
export const CLIENT_ERROR_PREFIX = 'client_';

/** `max_tokens` (or `max_completion_tokens`) the caller asked for, else the target's own. */
export function requestedMaxTokens(options: CallOptions | undefined, target?: Target): number | undefined {
  const body = options?.request?.body;
  const asked = body?.max_completion_tokens ?? body?.max_tokens;
  if (typeof asked === 'number' && Number.isFinite(asked)) return asked;
  return target?.params?.maxTokens;
}

export interface BlameContext {
  /** The call was a stream (its timeouts bound silences, which no `max_tokens` explains). */
  stream?: boolean;
  maxTokens?: number;
  timeoutMs?: number;
}

export function isClientCaused(errorClass: ErrorClass, ctx: BlameContext = {}): boolean {
  if (CLIENT_CAUSED_CLASSES.has(errorClass)) return true;
  if (errorClass !== 'timeout' || ctx.stream || !ctx.maxTokens || !ctx.timeoutMs) return false;
  return ctx.maxTokens > (ctx.timeoutMs / 1000) * CLIENT_TIMEOUT_TOKENS_PER_SECOND;
}

/** The `error_class` an event records: `client_<class>` when the request caused it. */
export function recordedErrorClass(errorClass: ErrorClass, ctx: BlameContext = {}): string {
  return isClientCaused(errorClass, ctx) ? `${CLIENT_ERROR_PREFIX}${errorClass}` : errorClass;
}

/**
 * SQL condition: the event's failure was the client's. Events written before classification carry the bare
 * class (`cancelled`, `bad_request`, `content_policy`), which count the same way. Such events say nothing
 * about the model: the arm statistics leave them out entirely (requests, errors, latency), so a client's
 * mistakes move neither an arm's error rate nor its slow share.
 */
export const CLIENT_CAUSED_SQL = `coalesce(left(error_class, ${CLIENT_ERROR_PREFIX.length}) = '${CLIENT_ERROR_PREFIX}' OR error_class IN ('cancelled', 'bad_request', 'content_policy'), false)`;
