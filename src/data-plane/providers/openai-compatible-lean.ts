import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type * as Undici from 'undici';
import type { Dispatcher } from 'undici';
import { since } from './attempt';
import { ProviderError, classifyHttpError, httpErrorMessage, parseRetryAfter } from './errors';
import { normalizeError, type AttemptState } from './normalize-error';
import {
  ChatStreamAccumulator,
  SsePassThrough,
  buildChatBody,
  normalizeChatCompletion,
  targetKey,
  upstreamChatBody,
} from './openai-wire';
import type { ProviderRegistry, ResolvedProvider } from './registry';
import type {
  CallerSignal,
  CallOptions,
  ChatMessage,
  CompletionResult,
  ProviderAdapter,
  StreamEvent,
  Target,
} from './types';

/*
 * undici's Agent and `request` alone, without its index: the index also loads fetch, WebSocket,
 * EventSource, the cache and the mock agents, none of which the hot path uses (measured in a bare process:
 * the index adds 20.4 MB of resident memory and 111 modules, these files about 9 MB less). undici has no
 * `exports` map, so the files are reachable; the index re-exports the same class, so code that loads both
 * shares it. The index mixes `request` into Dispatcher.prototype; here it is called with the dispatcher as
 * `this`, which works for any dispatcher (ours or one the caller brings).
 */
const load = createRequire(import.meta.url);
const Agent = load('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
const undiciRequest = load('undici/lib/api/api-request.js') as (
  this: Dispatcher,
  options: Dispatcher.RequestOptions,
) => Promise<Dispatcher.ResponseData>;

/**
 * The LEAN transport for OpenAI-compatible upstreams, for the gateway's hot path (see DESIGN.md,
 * "Performance notes": the `openai` SDK costs several hundred µs of CPU per call, undici `request` on a
 * keep-alive Agent a small fraction of that).
 *
 * Same `ProviderAdapter` contract as `createOpenAICompatibleAdapter`, built on the same request builder
 * and response normalizer (`openai-wire.ts`) and the same error classifier (`errors.ts`), so results and
 * error classes are identical; `test/providers-parity.test.ts` runs the same cases through both.
 *
 * - One pooled undici `Agent` per adapter (keep-alive, many connections per origin).
 * - The response body is read once and parsed once; the quality check and usage use that parse.
 * - `completeRaw()` also returns the upstream's JSON bytes, for a gateway that can pass them through to
 *   an OpenAI-API client unchanged when no translation is needed (OpenAI-compatible upstream, no field
 *   rewriting). Note that the bytes carry the upstream's `model`, `id` and `system_fingerprint`; the
 *   gateway splices them for keys that may not see arms (gateway/arm-mask.ts).
 * - Never retries. The per-attempt timeout is a native timer that aborts through a tiny EventEmitter
 *   handed to undici as its `signal` (undici accepts emitters): adding and removing a listener on a
 *   real `AbortSignal` costs ~10 µs of CPU per call, an emitter a fraction of a µs. undici's own
 *   `headersTimeout`/`bodyTimeout` would be cheaper still but run on ~1 s "fast timers", too coarse.
 *   As in the SDK adapters, the timeout bounds a whole `complete`; for streams it bounds the time to
 *   the first chunk, and `idleTimeoutMs` (default the same) each silence between chunks: never the
 *   whole stream. The caller's `signal` (if any) cancels.
 * - With `options.request` (the gateway's callers), the caller's body goes upstream as written (see
 *   `upstreamChatBody`) and stream chunks come back as they were sent (`sse` on each delta).
 */
export interface LeanAdapterOptions {
  registry: ProviderRegistry;
  defaultTimeoutMs?: number;
  /** Max sockets per upstream origin. Default 256. */
  connections?: number;
  /** Bring your own dispatcher (e.g. shared with other code); default a private keep-alive Agent. */
  dispatcher?: Dispatcher;
}

export interface RawCompletion {
  result: CompletionResult;
  /** The upstream response body, byte for byte. */
  raw: Buffer;
  /** The upstream `content-type`. */
  contentType: string;
}

export interface LeanOpenAICompatibleAdapter extends ProviderAdapter {
  /** Like `complete`, plus the upstream's response bytes for pass-through. */
  completeRaw(target: Target, messages: ChatMessage[], options?: CallOptions): Promise<RawCompletion>;
  /** Closes the pooled connections (only the private Agent). */
  close(): Promise<void>;
}

interface Endpoint {
  apiKey: string;
  /** Split once: `dispatcher.request` with origin and path skips undici's per-call URL parsing. */
  origin: string;
  path: string;
  jsonHeaders: Record<string, string>;
  streamHeaders: Record<string, string>;
}

export function createLeanOpenAICompatibleAdapter(options: LeanAdapterOptions): LeanOpenAICompatibleAdapter {
  const { registry } = options;
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 60_000;
  const ownAgent = options.dispatcher
    ? undefined
    : new Agent({
        connections: options.connections ?? 256,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 120_000,
        pipelining: 1,
      });
  const dispatcher: Dispatcher = options.dispatcher ?? ownAgent!;
  // Per (provider, baseUrl): URL and header objects built once, rebuilt when the env key changes.
  const endpoints = new Map<string, Endpoint>();

  const endpointFor = (provider: ResolvedProvider, target: string): Endpoint => {
    const apiKey = registry.apiKey(provider, target);
    const cacheKey = `${provider.name}\u0000${provider.baseUrl}`;
    const cached = endpoints.get(cacheKey);
    if (cached && cached.apiKey === apiKey) return cached;
    const base = {
      ...provider.defaultHeaders,
      authorization: `Bearer ${apiKey}`,
      'content-type': 'application/json',
    };
    const url = new URL(`${provider.baseUrl.replace(/\/+$/, '')}/chat/completions`);
    const endpoint: Endpoint = {
      apiKey,
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      jsonHeaders: { ...base, accept: 'application/json' },
      streamHeaders: { ...base, accept: 'text/event-stream' },
    };
    endpoints.set(cacheKey, endpoint);
    return endpoint;
  };

  /** Sends the request; on a non-2xx status reads the error body and throws the classified error. */
  const send = async (
    target: Target,
    key: string,
    messages: ChatMessage[],
    stream: boolean,
    attempt: LeanAttempt,
    callOptions: CallOptions | undefined,
  ): Promise<Dispatcher.ResponseData> => {
    const endpoint = endpointFor(registry.resolve(target), key);
    const response = await undiciRequest.call(dispatcher, {
      origin: endpoint.origin,
      path: endpoint.path,
      method: 'POST',
      headers: stream ? endpoint.streamHeaders : endpoint.jsonHeaders,
      body: callOptions?.request
        ? upstreamChatBody(target, callOptions.request, stream)
        : JSON.stringify(buildChatBody(target, messages, stream)),
      signal: attempt,
    });
    if (response.statusCode >= 200 && response.statusCode < 300) return response;
    throw await httpError(response, key);
  };

  async function complete(
    target: Target,
    messages: ChatMessage[],
    callOptions?: CallOptions,
  ): Promise<CompletionResult> {
    const key = targetKey(target);
    const attempt = new LeanAttempt(callOptions?.timeoutMs ?? defaultTimeoutMs, callOptions?.signal);
    const start = performance.now();
    try {
      const response = await send(target, key, messages, false, attempt, callOptions);
      if (!callOptions?.keepBytes) {
        const text = await response.body.text();
        return normalizeChatCompletion(JSON.parse(text), target, since(start), registry.pricing);
      }
      // The bytes ride on the result itself: the answer and its bytes live and die together (a side
      // table from result to bytes, such as a WeakMap, kept both alive through young-generation GCs).
      const body = Buffer.from(await response.body.arrayBuffer());
      const result = normalizeChatCompletion(
        JSON.parse(body.toString('utf8')),
        target,
        since(start),
        registry.pricing,
      );
      result.upstream = {
        body,
        contentType: headerValue(response.headers['content-type']) ?? 'application/json',
      };
      return result;
    } catch (error) {
      throw normalizeError(error, key, attempt);
    } finally {
      attempt.clear();
    }
  }

  async function completeRaw(
    target: Target,
    messages: ChatMessage[],
    callOptions?: CallOptions,
  ): Promise<RawCompletion> {
    const result = await complete(target, messages, { ...callOptions, keepBytes: true });
    const { body, contentType } = result.upstream!;
    return { result, raw: body, contentType };
  }

  async function* stream(
    target: Target,
    messages: ChatMessage[],
    callOptions?: CallOptions,
  ): AsyncGenerator<StreamEvent> {
    const key = targetKey(target);
    const attempt = new LeanAttempt(
      callOptions?.timeoutMs ?? defaultTimeoutMs,
      callOptions?.signal,
      callOptions?.idleTimeoutMs,
    );
    const start = performance.now();
    let firstTokenMs: number | undefined;
    let completed = false;
    const acc = new ChatStreamAccumulator(target, registry.pricing);
    const request = callOptions?.request;
    const pass = request
      ? new SsePassThrough(request.body.stream_options?.include_usage === true)
      : undefined;
    let body: Dispatcher.ResponseData['body'] | undefined;
    try {
      let iterator: AsyncIterator<string>;
      try {
        const response = await send(target, key, messages, true, attempt, callOptions);
        body = response.body;
        body.setEncoding('utf8');
        iterator = (body as AsyncIterable<string>)[Symbol.asyncIterator]();
      } catch (error) {
        throw normalizeError(error, key, attempt);
      }
      let buffer = '';
      let sawDone = false;
      while (!sawDone) {
        let next: IteratorResult<string>;
        try {
          next = await iterator.next();
        } catch (error) {
          throw normalizeError(error, key, attempt);
        }
        if (next.done) break;
        // The timeout bounds the first byte and each silence, never the whole stream.
        attempt.touch();
        buffer += next.value;
        let boundary: number;
        while ((boundary = eventBoundary(buffer)) >= 0) {
          const rawEvent = buffer.slice(0, boundary);
          buffer = buffer.slice(buffer.startsWith('\r\n', boundary) ? boundary + 4 : boundary + 2);
          const data = sseData(rawEvent);
          if (data === undefined) continue;
          if (data.startsWith('[DONE]')) {
            sawDone = true;
            break;
          }
          const chunk = parseChunk(data, key);
          const text = acc.push(chunk);
          if (pass) {
            const sse = pass.add(chunk, data, acc.substantive);
            if (sse !== undefined) {
              firstTokenMs ??= since(start);
              yield { type: 'delta', text, sse };
            }
          } else if (text) {
            firstTokenMs ??= since(start);
            yield { type: 'delta', text };
          }
        }
      }
      if (attempt.timedOut || attempt.cancelled) throw normalizeError(new Error('aborted'), key, attempt);
      const result = acc.finish(since(start), firstTokenMs);
      completed = true;
      attempt.clear();
      yield pass ? { type: 'done', result, sseTail: pass.tail() } : { type: 'done', result };
    } finally {
      attempt.clear();
      // Consumer stopped early (or we threw): destroying the body closes the upstream request.
      if (!completed) body?.destroy();
    }
  }

  return {
    complete,
    completeRaw,
    stream,
    async close() {
      await ownAgent?.close();
    },
  };
}

/**
 * The abort handle of one lean attempt: an EventEmitter with `aborted`/`reason`, which undici accepts as
 * `signal`. Fires on the per-attempt timeout (native timer, re-armed by `touch()` for streams) or when
 * the caller's AbortSignal aborts (one listener, only when the caller passed a signal).
 */
class LeanAttempt extends EventEmitter implements AttemptState {
  aborted = false;
  reason: unknown = undefined;
  timedOut = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly onCallerAbort: (() => void) | undefined;

  constructor(
    readonly timeoutMs: number,
    private readonly caller: CallerSignal | undefined,
    /** The allowed silence between stream chunks, when it differs from the first-byte timeout. */
    private idleTimeoutMs?: number,
  ) {
    super();
    if (timeoutMs > 0 && Number.isFinite(timeoutMs)) this.timer = setTimeout(this.onTimeout, timeoutMs);
    if (caller) {
      if (caller.aborted) this.abort(caller.reason);
      else {
        this.onCallerAbort = () => this.abort(caller.reason);
        caller.addEventListener('abort', this.onCallerAbort, { once: true });
      }
    }
  }

  get cancelled(): boolean {
    return !this.timedOut && !!this.caller?.aborted;
  }

  private readonly onTimeout = (): void => {
    this.timedOut = true;
    this.abort(new Error('attempt timed out'));
  };

  private abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit('abort');
  }

  /** A chunk arrived: the silence allowed from now on is the idle timeout. */
  touch(): void {
    if (!this.timer) return;
    if (this.idleTimeoutMs !== undefined && this.idleTimeoutMs !== this.timeoutMs) {
      clearTimeout(this.timer);
      this.timer = setTimeout(this.onTimeout, this.idleTimeoutMs);
      this.idleTimeoutMs = undefined;
    } else this.timer.refresh();
  }

  clear(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.onCallerAbort) this.caller?.removeEventListener('abort', this.onCallerAbort);
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Mirrors the SDK: read the error body as text, parse it if it is JSON, classify by status + body. */
async function httpError(response: Dispatcher.ResponseData, target: string): Promise<ProviderError> {
  const status = response.statusCode;
  let text: string;
  try {
    text = await response.body.text();
  } catch (error) {
    text = error instanceof Error ? error.message : '';
  }
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  const inner = json && typeof json === 'object' ? (json as { error?: unknown }).error : undefined;
  const headers = response.headers;
  const requestId = headerValue(headers['x-request-id']);
  return new ProviderError({
    errorClass: classifyHttpError(status, inner === undefined ? undefined : { error: inner }),
    target,
    message: httpErrorMessage(status, inner, json === undefined ? text || undefined : undefined),
    status,
    retryAfterMs: parseRetryAfter((name) => headerValue(headers[name])),
    providerRequestId: requestId,
  });
}

/** Index of the blank line ending the next SSE event (`\n\n` or `\r\n\r\n`), or -1. */
function eventBoundary(buffer: string): number {
  const lf = buffer.indexOf('\n\n');
  const crlf = buffer.indexOf('\r\n\r\n');
  if (lf < 0) return crlf;
  if (crlf < 0) return lf;
  return Math.min(lf, crlf);
}

/** The `data:` payload of one SSE event (multi-line data joined by `\n`), or undefined for comments. */
function sseData(event: string): string | undefined {
  let data: string | undefined;
  for (const line of event.split(/\r?\n/)) {
    if (!line.startsWith('data:')) continue;
    const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
    data = data === undefined ? value : `${data}\n${value}`;
  }
  return data;
}

/** One chunk; an `error` object inside a 200 stream is classified as the SDK does (status unknown). */
function parseChunk(data: string, target: string): unknown {
  let chunk: { error?: unknown } | null;
  try {
    chunk = JSON.parse(data) as { error?: unknown } | null;
  } catch (error) {
    throw normalizeError(error, target);
  }
  if (chunk && typeof chunk === 'object' && chunk.error) {
    throw new ProviderError({
      errorClass: classifyHttpError(undefined, { error: chunk.error }),
      target,
      message: httpErrorMessage(undefined, chunk.error),
    });
  }
  return chunk;
}
