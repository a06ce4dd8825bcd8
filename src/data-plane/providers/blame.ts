import type { CallOptions, ErrorClass, Target } from './types';

/**
 * Whose fault a failed call was, and what it says about the model. One rule for every place that counts
 * failures (the canary statistics and triggers, read from `request_events`, and the circuit breaker).
 *
 * Three kinds of failure:
 * - a hang-up (`cancelled`), or a JSON call that timed out while generating a `max_tokens` larger than a
 *   model can write within the timeout at `CLIENT_TIMEOUT_TOKENS_PER_SECOND`: the client's, on both arms
 *   alike. Recorded as `client_<class>`, left out of every statistic;
 * - a refusal: the upstream refused the request as malformed (400, `bad_request`), by content policy, or
 *   for a parameter the model does not take, or the gateway could not translate it for the target's API.
 *   A 400 can be the *model's* limitation (a candidate that rejects a parameter the application sends, a
 *   stricter content filter), and the same traffic goes to both arms: refusals are recorded as
 *   `refused_<kind>` and compared per arm (the refusal test of the canary policy). They are neither errors
 *   nor latency samples of either arm;
 * - anything else (5xx, timeouts, connection, ...): the model's error. A prompt over a target's context
 *   window (`context_length`) is the model's too: the candidate cannot serve a request the stable one can.
 * The breaker hands its permit back for hang-ups, refusals and `context_length` alike, as for every class
 * that says nothing about whether the provider is up: a fast, deterministic refusal must not cut a healthy
 * model off (its comparison with stable is the policy's job).
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

/** Prefix of the `request_events.error_class` of a hang-up or an impossible `max_tokens` (`client_cancelled`). */
export const CLIENT_ERROR_PREFIX = 'client_';

/** Prefix of the `request_events.error_class` of a refusal (`refused_bad_request`, ...), compared per arm. */
export const REFUSAL_PREFIX = 'refused_';

/** Upstream classes that are refusals of the request (compared per arm, never the breaker's business). */
export const REFUSAL_CLASSES: ReadonlySet<ErrorClass> = new Set<ErrorClass>([
  'bad_request',
  'content_policy',
]);

/**
 * What a refusal was, as its reason names it: `bad_request`, `content_policy`, `unsupported_parameter` (the
 * model does not take a parameter or value the request sends: OpenAI's `unsupported_parameter` /
 * `unsupported_value`), `untranslatable` (the gateway could not carry a field to the target's API).
 */
export type RefusalKind = 'bad_request' | 'content_policy' | 'unsupported_parameter' | 'untranslatable';

export const REFUSAL_KINDS: readonly RefusalKind[] = [
  'bad_request',
  'content_policy',
  'unsupported_parameter',
  'untranslatable',
];

/** The provider's message of a parameter the model refuses (OpenAI's wording and code names). */
const UNSUPPORTED = /unsupported[ _](parameter|value)/i;
/** anthropic-translate.ts's wording for a field it cannot carry. */
const UNTRANSLATABLE = /cannot be translated/i;

/** The kind of a refusal, from its class and the provider's (scrubbed) message; undefined when not one. */
export function refusalKind(errorClass: ErrorClass, detail = ''): RefusalKind | undefined {
  if (errorClass === 'content_policy') return 'content_policy';
  if (errorClass !== 'bad_request') return undefined;
  if (UNTRANSLATABLE.test(detail)) return 'untranslatable';
  if (UNSUPPORTED.test(detail)) return 'unsupported_parameter';
  return 'bad_request';
}

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

/**
 * The `error_class` an event records: `refused_<kind>` for a refusal (`detail`, the provider's message,
 * tells the kinds of 400 apart), `client_<class>` for a hang-up or an impossible `max_tokens`, else the
 * class.
 */
export function recordedErrorClass(errorClass: ErrorClass, ctx: BlameContext = {}, detail = ''): string {
  const refusal = refusalKind(errorClass, detail);
  if (refusal) return `${REFUSAL_PREFIX}${refusal}`;
  return isClientCaused(errorClass, ctx) ? `${CLIENT_ERROR_PREFIX}${errorClass}` : errorClass;
}

/** Whether a failed attempt says something against the model (a hang-up or a refusal does not). */
export function isModelAttemptFailure(errorClass: ErrorClass | undefined): boolean {
  return errorClass !== undefined && errorClass !== 'circuit_open' && !CLIENT_CAUSED_CLASSES.has(errorClass);
}

/**
 * SQL condition: a refusal (compared per arm, never an error or latency sample). Events written before
 * refusals were told apart carry `client_bad_request`/`client_content_policy`, or the bare class, which
 * count the same way.
 */
export const REFUSAL_SQL = `coalesce(left(error_class, ${REFUSAL_PREFIX.length}) = '${REFUSAL_PREFIX}' OR error_class IN ('bad_request', 'content_policy', 'client_bad_request', 'client_content_policy'), false)`;

/** SQL: the refusal's kind (for the reason: "refused 19% of requests as bad_request"). */
export const REFUSAL_KIND_SQL = `regexp_replace(error_class, '^(${REFUSAL_PREFIX}|${CLIENT_ERROR_PREFIX})', '')`;

/**
 * SQL condition: the event's failure was the client's and says nothing about either arm (a hang-up, an
 * impossible max_tokens): the arm statistics leave such events out entirely, on both arms. Events written
 * before classification carry the bare `cancelled`.
 */
export const CLIENT_CAUSED_SQL = `coalesce((left(error_class, ${CLIENT_ERROR_PREFIX.length}) = '${CLIENT_ERROR_PREFIX}' AND error_class NOT IN ('client_bad_request', 'client_content_policy')) OR error_class = 'cancelled', false)`;
