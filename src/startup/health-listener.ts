import http from 'node:http';

/**
 * A small HTTP listener for probes: the worker's (`worker --health-port`), and the gateway's while it still
 * waits for Postgres (before its own server can answer). Kubernetes-style paths:
 *
 *   GET /livez    200 while the process runs (a liveness probe must not restart a process that waits)
 *   GET /readyz   200 when ready, 503 with what it waits for
 *   GET /healthz  the same answer as /readyz
 *
 * Anything else gets `fallback` (default 404). Bodies are JSON and name dependencies, never addresses.
 */
export interface HealthAnswer {
  ready: boolean;
  body: Record<string, unknown>;
}

export interface HealthListenerOptions {
  port: number;
  host?: string;
  /** Asked on every /readyz and /healthz (coalesce or cache inside when it does I/O). */
  health: () => Promise<HealthAnswer> | HealthAnswer;
  /** Serve /livez, /readyz and /healthz (default true); false answers every path with `fallback`. */
  probes?: boolean;
  fallback?: (req: http.IncomingMessage, res: http.ServerResponse) => void;
}

export interface HealthListener {
  /** `http://host:port` */
  url: string;
  close(): Promise<void>;
}

export async function startHealthListener(options: HealthListenerOptions): Promise<HealthListener> {
  const host = options.host ?? '127.0.0.1';
  const probes = options.probes ?? true;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (probes && req.method === 'GET' && path === '/livez') return json(res, 200, { status: 'alive' });
    if (probes && req.method === 'GET' && (path === '/readyz' || path === '/healthz')) {
      Promise.resolve()
        .then(() => options.health())
        .then(
          (answer) => json(res, answer.ready ? 200 : 503, answer.body),
          () => json(res, 503, { status: 'unknown', ready: false }),
        );
      return;
    }
    if (options.fallback) return options.fallback(req, res);
    json(res, 404, { error: 'not found' });
  });
  // A probe that connects and sends nothing must not hold a socket for long.
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export function json(res: http.ServerResponse, status: number, body: unknown, headers = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}
