import type { ProviderError } from '../providers';
import { scrubMessage } from './edges';

/**
 * OpenAI-style error bodies: every error the gateway sends is `{"error":{"message","type","param","code"}}`,
 * so an OpenAI client raises its usual typed errors (`AuthenticationError`, `NotFoundError`,
 * `RateLimitError`, ...) with a readable message.
 */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly code: string | null,
    message: string,
    readonly param: string | null = null,
    /** Extra response headers (e.g. `retry-after`). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }

  body(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/**
 * Status of a failed chain call. The chain's error class says whose fault it was:
 * - the request's (bad_request, content_policy) → 400, as every target would refuse it;
 * - upstream rate limits → 429 with the smallest retry-after any provider gave;
 * - overload and open circuits → 503 (try again later), timeouts → 504;
 * - anything else (5xx, connection, malformed answers, failed quality checks, and the gateway's own
 *   upstream credentials or model names being wrong) → 502: not the client's problem to fix.
 */
export function fromProviderError(
  error: ProviderError,
  route: string,
  /** For keys that may not see arms: the chain's target names (`provider:model` and model), never shown. */
  options: { hideTargets?: readonly string[] } = {},
): GatewayError {
  // The chain's message names targets and upstream answers; callers get it without hosts, ports or
  // variable names, and nothing of the gateway's own credential or model-name problems. A key that may
  // not see arms gets no target names either (they would tell it which arm it landed on).
  const message = OPERATOR_ONLY.has(error.errorClass)
    ? `route "${route}": the gateway could not use its upstream provider (${error.errorClass}); the operator must fix its configuration`
    : options.hideTargets
      ? withoutNames(route, error, options.hideTargets)
      : `route "${route}": ${scrubMessage(error.message)}`;
  const headers =
    error.retryAfterMs !== undefined
      ? { 'retry-after': String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) }
      : undefined;
  switch (error.errorClass) {
    case 'rate_limited':
      return new GatewayError(429, 'rate_limit_error', 'rate_limit_exceeded', message, null, headers);
    case 'overloaded':
    case 'circuit_open':
      return new GatewayError(503, 'server_error', 'upstream_unavailable', message, null, headers);
    case 'timeout':
      return new GatewayError(504, 'server_error', 'upstream_timeout', message);
    case 'bad_request':
      return new GatewayError(400, 'invalid_request_error', 'upstream_rejected_request', message);
    case 'content_policy':
      return new GatewayError(400, 'invalid_request_error', 'content_policy_violation', message);
    case 'context_length':
      // No larger-context fallback was configured (or it refused too): the prompt is the caller's to shorten.
      return new GatewayError(400, 'invalid_request_error', 'context_length_exceeded', message, 'messages');
    case 'cancelled':
      // Nobody reads it (the client went away); 499 keeps it apart from server errors in access logs.
      return new GatewayError(499, 'invalid_request_error', 'client_closed_request', message);
    default:
      return new GatewayError(502, 'server_error', 'upstream_error', message);
  }
}

/**
 * The reason without the names of the targets tried: the class and the last upstream's own words (a
 * refused request says what to fix), each target and model name replaced by "the model".
 */
function withoutNames(route: string, error: ProviderError, names: readonly string[]): string {
  const failed = error.attempts?.filter((a) => a.errorClass && a.errorClass !== 'circuit_open') ?? [];
  let detail = scrubMessage(failed.at(-1)?.message ?? error.detail);
  for (const name of [...names].sort((a, b) => b.length - a.length)) {
    if (name) detail = detail.split(name).join('the model');
  }
  return `route "${route}": ${error.errorClass}${detail ? `: ${detail}` : ''}`;
}

/** Upstream refusals caused by the gateway's own configuration (keys, permissions, model names). */
const OPERATOR_ONLY = new Set<string>(['auth', 'permission', 'not_found']);

export const unauthorized = (message: string) =>
  new GatewayError(401, 'invalid_request_error', 'invalid_api_key', message);

export const invalidBody = (message: string, param: string | null = null) =>
  new GatewayError(400, 'invalid_request_error', 'invalid_request_body', message, param);

export const forbidden = (message: string, param: string | null) =>
  new GatewayError(403, 'permission_error', 'permission_denied', message, param);
