/**
 * The gateway's edges: how long a client may take, how big its headers may be, and what the gateway says
 * about itself when something fails. A slow or idle client must not hold a connection (and a socket, and
 * memory) forever, and nothing a caller sees may name internal hosts, ports, databases or environment
 * variables.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { RouterHealth } from '../router/router';

/** The longest routing key (`x-rollout-key` or `user`): longer ones are refused with 400. */
export const ROUTING_KEY_MAX = 256;

export interface ConnectionLimits {
  /** Time to receive the request's headers, from the connection's first byte (default 10 s). */
  headersTimeoutMs: number;
  /** Time to receive the whole request, body included (default 30 s). */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long (default 5 s). */
  keepAliveTimeoutMs: number;
  /**
   * A connection with no bytes in either direction this long is closed (default 10 min). Generous: a
   * non-streamed completion is silent on the socket while the model thinks.
   */
  idleTimeoutMs: number;
  /** Largest header block; larger gets 431 (default 16 KiB). */
  maxHeaderBytes: number;
  /** How often Node checks the header and request timeouts (default: a quarter of the header timeout). */
  checkIntervalMs: number;
}

export function connectionLimits(given: Partial<ConnectionLimits> = {}) {
  const headersTimeoutMs = given.headersTimeoutMs ?? 10_000;
  const requestTimeoutMs = Math.max(given.requestTimeoutMs ?? 30_000, headersTimeoutMs);
  const limits: ConnectionLimits = {
    headersTimeoutMs,
    requestTimeoutMs,
    keepAliveTimeoutMs: given.keepAliveTimeoutMs ?? 5_000,
    idleTimeoutMs: given.idleTimeoutMs ?? 600_000,
    maxHeaderBytes: given.maxHeaderBytes ?? 16 * 1024,
    checkIntervalMs: given.checkIntervalMs ?? Math.max(250, Math.min(5_000, headersTimeoutMs / 4)),
  };
  return {
    ...limits,
    /** Fastify's own options for the same limits. */
    fastify: {
      connectionTimeout: limits.idleTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
    },
  };
}

/**
 * The HTTP server with the limits set where only `http.createServer` can set them (header size, the timeout
 * check interval), and the timeouts Fastify would otherwise set itself.
 */
export function httpServerFactory(limits: ConnectionLimits) {
  return (handler: http.RequestListener): http.Server => {
    const server = http.createServer(
      {
        maxHeaderSize: limits.maxHeaderBytes,
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        connectionsCheckingInterval: limits.checkIntervalMs,
      },
      handler,
    );
    server.setTimeout(limits.idleTimeoutMs);
    return server;
  };
}

/**
 * Errors Node raises before a request exists (headers too large, too slow, malformed): an OpenAI-style body
 * too, then the connection is closed.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let status: number;
  let code: string;
  let message: string;
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    [status, code, message] = [408, 'request_timeout', 'the request was not received in time'];
  } else if (err.code === 'HPE_HEADER_OVERFLOW') {
    [status, code, message] = [431, 'headers_too_large', 'the request headers are too large'];
  } else {
    [status, code, message] = [400, 'malformed_request', 'malformed HTTP request'];
  }
  const body = JSON.stringify({ error: { message, type: 'invalid_request_error', param: null, code } });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/**
 * `/healthz` for callers: whether it is healthy and why not, in words that name no host, database or
 * error text (those go to the log).
 */
export function publicHealth(h: RouterHealth) {
  const reasons: string[] = [];
  if (h.routing.stale) reasons.push('routing state is stale');
  else if (!h.routing.ok) reasons.push('routing state may be stale');
  if (!h.postgres.ok) reasons.push('postgres unreachable');
  if (h.events && h.events.dropped > 0) reasons.push(`${h.events.dropped} request events dropped`);
  const { lastError: _routingError, ...routing } = h.routing;
  const staleness = h.routing.stalenessMs;
  return {
    status: h.ok ? 'ok' : 'degraded',
    // Degraded still serves: routing comes from the cached state, events buffer until the buffer is full.
    serving: servesRoutes(h),
    /** Serving from routing state not confirmed for longer than the cache's `staleAfterMs`. */
    stale: h.routing.stale,
    /** Seconds since the routing state was last confirmed current (null before the first read). */
    stalenessSeconds: Number.isFinite(staleness) ? Math.round(staleness / 100) / 10 : null,
    reasons,
    waitingFor: waitingFor(h),
    routing: {
      ...routing,
      stalenessMs: Number.isFinite(h.routing.stalenessMs) ? Math.round(h.routing.stalenessMs) : null,
    },
    postgres: { ok: h.postgres.ok, latencyMs: h.postgres.latencyMs },
    events: h.events,
    shadow: h.shadow,
    breakers: h.breakers,
  };
}

/** `/readyz`: the `/healthz` rule in a short body. */
export function publicReadiness(h: RouterHealth) {
  const staleness = h.routing.stalenessMs;
  return {
    ready: servesRoutes(h),
    waitingFor: waitingFor(h),
    stale: h.routing.stale,
    stalenessSeconds: Number.isFinite(staleness) ? Math.round(staleness / 100) / 10 : null,
  };
}

/** What the replica waits for: Postgres, until it answers (before the first read, or while it is away). */
function waitingFor(h: RouterHealth): string[] {
  return !h.postgres.ok || !servesRoutes(h) ? ['postgres'] : [];
}

/**
 * Whether this replica can route at all: it has read the routing state at least once. `/healthz` answers
 * 200 while it can (even from stale state, saying so: taking a replica out of rotation because Postgres is
 * away would stop answers that the cached state still serves), 503 only when it cannot.
 */
export function servesRoutes(h: RouterHealth): boolean {
  return h.routing.lastRefreshAt !== null;
}

/**
 * A provider's error message as a client may read it: URLs, host:port pairs, IP addresses and environment
 * variable names replaced (connection errors name upstream hosts; missing-key errors name variables).
 */
export function scrubMessage(message: string): string {
  return message
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>)]+/gi, '<url>')
    .replace(/\[[0-9a-f:]+\](?::\d+)?/gi, '<host>')
    .replace(/\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b/g, '<host>')
    .replace(/\b(?:localhost|[a-z0-9-]+(?:\.[a-z0-9-]+)+):\d{2,5}\b/gi, '<host>')
    .replace(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g, '<setting>');
}
