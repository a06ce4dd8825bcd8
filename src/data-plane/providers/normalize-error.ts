import type * as AnthropicSdk from '@anthropic-ai/sdk';
import type * as OpenAISdk from 'openai';
import {
  ProviderError,
  cancelledError,
  classifyHttpError,
  describeNetworkError,
  httpErrorMessage,
  parseRetryAfter,
  timeoutError,
} from './errors';
import { loaded } from './sdk-modules';

/**
 * Turns anything an adapter's call threw into a `ProviderError`. The SDK error is read for plain
 * fields (status, error body, retry-after) and then dropped: it is never kept as `cause`, because it
 * carries response headers and, for connection errors, a cause chain that may hold request details.
 */
/** What the adapter knows about why its attempt ended (see `AttemptSignal`). */
export interface AttemptState {
  readonly timedOut: boolean;
  readonly cancelled: boolean;
  readonly timeoutMs?: number;
}

export function normalizeError(error: unknown, target: string, attempt?: AttemptState): ProviderError {
  if (error instanceof ProviderError) return error;
  // Our own signal fired: the attempt's timeout or the caller's cancellation, whatever the SDK made of it.
  if (attempt?.timedOut) return timeoutError(target, attempt.timeoutMs);
  if (attempt?.cancelled) return cancelledError(target);

  const fromAnthropic = isSdk(error, 'APIError', 'anthropic');
  if (fromAnthropic || isSdk(error, 'APIError', 'openai')) {
    return fromSdkApiError(error as SdkApiError, target, fromAnthropic);
  }
  if (error instanceof SyntaxError) {
    return new ProviderError({
      errorClass: 'malformed_response',
      target,
      message: `invalid JSON from provider: ${error.message}`,
    });
  }
  if (isAbort(error)) return cancelledError(target);
  if (isNetworkError(error)) {
    return new ProviderError({ errorClass: 'connection', target, message: describeNetworkError(error) });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ProviderError({ errorClass: 'server_error', target, message: `unexpected error: ${message}` });
}

type SdkApiError = OpenAISdk.APIError | AnthropicSdk.APIError;
type SdkErrorClass = 'APIError' | 'APIConnectionTimeoutError' | 'APIUserAbortError' | 'APIConnectionError';

/** `error instanceof sdk[name]`, for the SDKs loaded (one never loaded threw nothing). */
function isSdk(error: unknown, name: SdkErrorClass, only?: 'openai' | 'anthropic'): boolean {
  const o = only === 'anthropic' ? undefined : loaded.openai;
  const a = only === 'openai' ? undefined : loaded.anthropic;
  return (!!o && error instanceof o[name]) || (!!a && error instanceof a[name]);
}

function fromSdkApiError(error: SdkApiError, target: string, anthropic: boolean): ProviderError {
  if (isSdk(error, 'APIConnectionTimeoutError')) return timeoutError(target, undefined);
  if (isSdk(error, 'APIUserAbortError')) return cancelledError(target);
  if (isSdk(error, 'APIConnectionError')) {
    const cause = (error as { cause?: unknown }).cause;
    return new ProviderError({
      errorClass: 'connection',
      target,
      message: cause ? describeNetworkError(cause) : error.message,
    });
  }
  const status = error.status;
  // The OpenAI SDK keeps `body.error` in `.error`; the Anthropic SDK keeps the whole body.
  const body = anthropic ? error.error : error.error === undefined ? undefined : { error: error.error };
  const headers = error.headers as Headers | undefined;
  const retryAfterMs = headers ? parseRetryAfter((name) => headers.get(name)) : undefined;
  const requestId = error.requestID ?? undefined;
  // Anthropic bodies nest the message one level down; the SDK would print the whole JSON body.
  const message =
    anthropic && body && typeof body === 'object' && (body as { error?: unknown }).error
      ? httpErrorMessage(status, (body as { error?: unknown }).error)
      : error.message;
  return new ProviderError({
    errorClass: classifyHttpError(status, body),
    target,
    message,
    status,
    retryAfterMs,
    providerRequestId: requestId ?? undefined,
  });
}

function isAbort(error: unknown): boolean {
  return !!error && typeof error === 'object' && (error as { name?: unknown }).name === 'AbortError';
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_DESTROYED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** Socket-level failures: reset, refused, closed mid-body (`TypeError: terminated`), premature close. */
export function isNetworkError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current && typeof current === 'object' && depth < 4; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
    const message = (current as { message?: unknown }).message;
    if (
      typeof message === 'string' &&
      /terminated|socket|other side closed|fetch failed|premature close/i.test(message)
    ) {
      return true;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
