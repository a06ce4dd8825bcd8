import { RETRYABLE_CLASSES, type ErrorClass } from './types';

/**
 * Normalized provider errors. Every adapter (Anthropic SDK, OpenAI SDK, lean undici transport) throws
 * only `ProviderError`, so the fallback chain, router and metrics see one vocabulary of failure.
 *
 * Secrets: a `ProviderError` never carries an API key. Its message is scrubbed of the key values in
 * the environment and of anything shaped like a key; it keeps no SDK error (those hold response
 * headers and, for connection errors, a `cause` chain we do not control), no request headers and no
 * request options. Only plain data fields are kept.
 */

export interface Attempt {
  /** `provider:model`. */
  target: string;
  /** Absent when the attempt succeeded. */
  errorClass?: ErrorClass;
  message?: string;
  latencyMs: number;
  status?: number;
  retryAfterMs?: number;
}

export interface ProviderErrorInit {
  errorClass: ErrorClass;
  /** `provider:model` (or a description of several targets for a chain error). */
  target: string;
  /** The provider's message (scrubbed here again, so callers may pass raw text). */
  message: string;
  status?: number;
  retryAfterMs?: number;
  providerRequestId?: string;
  /** Overrides the class default (`RETRYABLE_CLASSES`). */
  retryable?: boolean;
}

export class ProviderError extends Error {
  readonly errorClass: ErrorClass;
  readonly retryable: boolean;
  readonly status?: number;
  readonly target: string;
  readonly retryAfterMs?: number;
  readonly providerRequestId?: string;
  /** The provider's own (scrubbed) message, without the target prefix. */
  readonly detail: string;
  /** Set by the fallback chain when this error ends a chain call: every attempt made, in order. */
  attempts?: Attempt[];

  constructor(init: ProviderErrorInit) {
    const scrubbed = scrubSecrets(init.message);
    const detail = scrubbed.length > MAX_DETAIL ? `${scrubbed.slice(0, MAX_DETAIL)}...` : scrubbed;
    super(`${init.target}: ${init.errorClass}: ${detail}`);
    this.name = 'ProviderError';
    this.errorClass = init.errorClass;
    this.retryable = init.retryable ?? RETRYABLE_CLASSES.has(init.errorClass);
    this.target = init.target;
    this.detail = detail;
    if (init.status !== undefined) this.status = init.status;
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
    if (init.providerRequestId !== undefined) this.providerRequestId = init.providerRequestId;
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      message: this.message,
      errorClass: this.errorClass,
      retryable: this.retryable,
      status: this.status,
      target: this.target,
      retryAfterMs: this.retryAfterMs,
      providerRequestId: this.providerRequestId,
      attempts: this.attempts,
    };
  }
}

/**
 * Every target of a chain call failed (or was skipped by an open breaker). `errorClass` is that of the
 * last attempt that actually reached a provider (`circuit_open` if none did); `retryable` is true when
 * any attempt failed for a transient reason, so a caller may try again later; `retryAfterMs` is the
 * smallest hint any provider gave.
 */
export class ChainExhaustedError extends ProviderError {
  override attempts: Attempt[];

  constructor(attempts: Attempt[]) {
    let last: Attempt | undefined;
    let retryable = false;
    let retryAfterMs: number | undefined;
    for (const attempt of attempts) {
      if (attempt.errorClass && attempt.errorClass !== 'circuit_open') last = attempt;
      if (attempt.errorClass && RETRYABLE_CLASSES.has(attempt.errorClass)) retryable = true;
      if (attempt.retryAfterMs !== undefined)
        retryAfterMs = Math.min(retryAfterMs ?? Infinity, attempt.retryAfterMs);
    }
    last ??= attempts[attempts.length - 1];
    super({
      errorClass: last?.errorClass ?? 'circuit_open',
      target: attempts.map((a) => a.target).join(' -> ') || '(no targets)',
      message: `all ${attempts.length} target(s) failed: ${attempts.map(describeAttempt).join('; ')}`,
      status: last?.status,
      retryAfterMs,
      retryable,
    });
    this.name = 'ChainExhaustedError';
    this.attempts = attempts;
  }
}

export function describeAttempt(attempt: Attempt): string {
  const status = attempt.status !== undefined ? ` ${attempt.status}` : '';
  const message = attempt.message ? ` "${attempt.message}"` : '';
  return `${attempt.target} ${attempt.errorClass ?? 'ok'}${status}${message} after ${Math.round(attempt.latencyMs)} ms`;
}

// ---------------------------------------------------------------------------------------------------
// Secret scrubbing

/** Shapes of credentials that must never appear in a message, whatever their source. */
const SECRET_PATTERNS: [RegExp, string][] = [
  [/\bsk-[A-Za-z0-9_-]{8,}/g, '[redacted]'], // OpenAI, Anthropic (sk-ant-...), DeepSeek, OpenRouter (sk-or-...)
  [/\bAIza[0-9A-Za-z_-]{20,}/g, '[redacted]'], // Google API keys
  // Keep the label (`Bearer`, `x-api-key:`) so the message still says what was there.
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, '$1 [redacted]'],
  [
    /\b(x-api-key|api[-_]?key|authorization|x-goog-api-key)(["']?\s*[:=]\s*["']?)[^\s"',}]{8,}/gi,
    '$1$2[redacted]',
  ],
];

/** Env var names whose values are treated as secrets (besides the registry's configured key vars). */
const SECRET_ENV_NAME = /(_API_KEY|_KEY|_TOKEN|_SECRET)$/;
const extraSecretEnvNames = new Set<string>();

/** Lets the registry declare its key env vars (they may not follow the naming convention). */
export function registerSecretEnvName(name: string): void {
  extraSecretEnvNames.add(name);
}

const REDACTED = '[redacted]';

/** Key-like env var names, rescanned at most every few seconds (listing process.env costs ~20 µs). */
let scannedNames: string[] = [];
let scannedAt = -Infinity;
const RESCAN_MS = 5000;

function secretEnvNames(env: NodeJS.ProcessEnv): Iterable<string> {
  if (env !== process.env)
    return Object.keys(env).filter((name) => SECRET_ENV_NAME.test(name) || extraSecretEnvNames.has(name));
  const now = performance.now();
  if (now - scannedAt > RESCAN_MS) {
    scannedNames = Object.keys(env).filter((name) => SECRET_ENV_NAME.test(name));
    scannedAt = now;
  }
  // Registered key vars (the registry's `apiKeyEnv`s) are always checked, even if set after the scan.
  return extraSecretEnvNames.size === 0 ? scannedNames : new Set([...scannedNames, ...extraSecretEnvNames]);
}

/**
 * Removes secrets from a message: the current values of key-like env vars (read now, keys may change at
 * run time) and anything that looks like a key. Runs on the error path only.
 */
export function scrubSecrets(text: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!text) return text;
  let out = text;
  for (const name of secretEnvNames(env)) {
    const value = env[name];
    if (value && value.length >= 8 && out.includes(value)) out = out.split(value).join(REDACTED);
  }
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Classification shared by every transport (so SDK and lean paths agree by construction)

const CONTENT_POLICY = /content[ _-]?(policy|filter|management)|safety (system|policy)|flagged|moderation/i;

/**
 * Class of an HTTP error response. `body` is the parsed error JSON when there is one: OpenAI-style
 * `{ error: { message, type, code } }`, Anthropic-style `{ type: 'error', error: { type, message } }`.
 */
export function classifyHttpError(status: number | undefined, body: unknown): ErrorClass {
  const inner = errorObject(body);
  const type = stringField(inner, 'type') ?? stringField(body, 'type');
  const code = stringField(inner, 'code');
  if (type === 'overloaded_error' || code === 'overloaded') return 'overloaded';
  if (status === undefined) {
    // An error event inside a 200 stream: classify by the provider's type/code.
    if (type === 'rate_limit_error' || code === 'rate_limit_exceeded') return 'rate_limited';
    if (type === 'invalid_request_error') return isContentPolicy(inner) ? 'content_policy' : 'bad_request';
    if (type === 'authentication_error') return 'auth';
    if (type === 'permission_error') return 'permission';
    if (type === 'not_found_error') return 'not_found';
    return 'server_error';
  }
  if (status === 429) return 'rate_limited';
  if (status === 529 || status === 503) return 'overloaded';
  if (status === 408 || status === 504) return 'timeout';
  if (status >= 500) return 'server_error';
  if (status === 401) return 'auth';
  if (status === 403) return isContentPolicy(inner) ? 'content_policy' : 'permission';
  if (status === 404) return 'not_found';
  if (status === 400 || status === 422 || status === 413) {
    if (isContextLength(inner)) return 'context_length';
    return isContentPolicy(inner) ? 'content_policy' : 'bad_request';
  }
  // 409 and other 4xx: unusual; treat as a transient server-side conflict.
  return 'server_error';
}

// OpenAI `context_length_exceeded`, Anthropic "prompt is too long", vLLM/others "maximum context length".
const CONTEXT_LENGTH =
  /context[ _-]?(length|window)|prompt is too long|maximum context|too many (input )?tokens/i;

function isContextLength(inner: unknown): boolean {
  const code = stringField(inner, 'code');
  if (code && CONTEXT_LENGTH.test(code)) return true;
  const message = stringField(inner, 'message');
  return !!message && CONTEXT_LENGTH.test(message);
}

function isContentPolicy(inner: unknown): boolean {
  const code = stringField(inner, 'code');
  const type = stringField(inner, 'type');
  if (code && CONTENT_POLICY.test(code)) return true;
  if (type && CONTENT_POLICY.test(type)) return true;
  const message = stringField(inner, 'message');
  return !!message && CONTENT_POLICY.test(message);
}

/**
 * The provider's error message exactly as the Stainless SDKs format it (`APIError.makeMessage`), so the
 * lean transport and the SDK path produce the same text. `inner` is the error object (`body.error` for
 * OpenAI-style bodies); `text` the raw body when it was not JSON.
 */
export function httpErrorMessage(status: number | undefined, inner: unknown, text?: string): string {
  const raw = inner && typeof inner === 'object' ? (inner as Record<string, unknown>).message : undefined;
  const msg = raw
    ? typeof raw === 'string'
      ? raw
      : JSON.stringify(raw)
    : inner
      ? JSON.stringify(inner)
      : text;
  if (status && msg) return `${status} ${msg}`;
  if (status) return `${status} status code (no body)`;
  if (msg) return msg;
  return '(no status code or body)';
}

const MAX_DETAIL = 1000;

function errorObject(body: unknown): unknown {
  if (!body || typeof body !== 'object') return undefined;
  const error = (body as Record<string, unknown>).error;
  return error && typeof error === 'object' ? error : undefined;
}

function stringField(value: unknown, key: string): string | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const field = (value as Record<string, unknown>)[key];
  return typeof field === 'string' ? field : undefined;
}

/** `retry-after-ms`, else `retry-after` (seconds or an HTTP date), in milliseconds. */
export function parseRetryAfter(get: (name: string) => string | null | undefined): number | undefined {
  const ms = get('retry-after-ms');
  if (ms) {
    const value = Number.parseFloat(ms);
    if (Number.isFinite(value) && value >= 0) return value;
  }
  const header = get('retry-after');
  if (!header) return undefined;
  const seconds = Number.parseFloat(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/**
 * What went wrong at the socket level: the innermost cause of a thrown network error (`fetch failed` and
 * `terminated` are wrappers around the real reason), with its code: `other side closed (UND_ERR_SOCKET)`.
 * The same for the SDK path (fetch) and the lean path (undici), so both report the same text.
 */
export function describeNetworkError(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 5; depth++) {
    const cause = current && typeof current === 'object' ? (current as { cause?: unknown }).cause : undefined;
    if (!cause) break;
    current = cause;
  }
  if (current instanceof Error) {
    const code = (current as { code?: unknown }).code;
    const message = current.message || current.name;
    return typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message;
  }
  return current ? String(current) : 'connection error';
}

/** Shared wording for an attempt cut by the per-attempt timeout. */
export function timeoutError(target: string, timeoutMs: number | undefined, what = 'request'): ProviderError {
  return new ProviderError({
    errorClass: 'timeout',
    target,
    message: timeoutMs !== undefined ? `${what} timed out after ${timeoutMs} ms` : `${what} timed out`,
  });
}

export function cancelledError(target: string): ProviderError {
  return new ProviderError({
    errorClass: 'cancelled',
    target,
    message: 'request was cancelled by the caller',
  });
}

export function isProviderError(error: unknown): error is ProviderError {
  return error instanceof ProviderError;
}
