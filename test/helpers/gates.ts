/**
 * The team's own systems, served in the test: a webhook receiver (the worker's named hooks post to its
 * paths; each path answers as the test says, or hangs) that checks every signature, and a
 * Prometheus-compatible HTTP API (`/api/v1/query`) whose values the test sets, recording each query.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySignature, SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../../src/control-plane/alerts/channels';

export const HOOK_SECRET = 'test-hook-secret-0123456789';

export type HookReply = { status: number; body?: string } | 'hang';

export interface HookRequest {
  path: string;
  body: string;
  json: { hook: string; type: string; rollout: Record<string, unknown>; event?: { kind: string } };
  signed: boolean;
  delivery: string;
  /** Still waiting for its answer (a hanging hook). */
  open: boolean;
}

export interface WebhookServer {
  url: string;
  /** The worker's WEBHOOK_GATES: one named hook per name, at /<name>. */
  gates(...names: string[]): Record<string, { url: string; secret: string }>;
  /** How /<name> answers from now on (default 200). */
  reply(name: string, r: HookReply): void;
  requests(name?: string): HookRequest[];
  close(): Promise<void>;
}

export async function startWebhookServer(): Promise<WebhookServer> {
  const replies = new Map<string, HookReply>();
  const requests: HookRequest[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const name = (req.url ?? '/').slice(1);
      const signed = verifySignature(
        HOOK_SECRET,
        String(req.headers[TIMESTAMP_HEADER]),
        body,
        String(req.headers[SIGNATURE_HEADER]),
      );
      let json: HookRequest['json'];
      try {
        json = JSON.parse(body);
      } catch {
        json = { hook: '', type: '', rollout: {} };
      }
      const entry: HookRequest = {
        path: name,
        body,
        json,
        signed,
        delivery: String(req.headers['x-model-rollout-delivery']),
        open: true,
      };
      requests.push(entry);
      const reply = replies.get(name) ?? { status: 200 };
      res.on('close', () => (entry.open = false));
      if (reply === 'hang') return; // never answers; the worker's timeout ends it
      res.statusCode = reply.status;
      res.end(reply.body ?? '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    gates: (...names) =>
      Object.fromEntries(names.map((n) => [n, { url: `${url}/${n}`, secret: HOOK_SECRET }])),
    reply: (name, r) => void replies.set(name, r),
    requests: (name) => requests.filter((r) => name === undefined || r.path === name),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface PrometheusServer {
  url: string;
  /** Every query received, as sent. */
  queries: string[];
  /**
   * Adds an answerer: the value a query gets (null: an empty vector; { error }: an error answer), or
   * undefined to leave the query to the others (tests run concurrently, each with its own route); default 0.
   */
  answer(fn: Answerer): void;
  close(): Promise<void>;
}

type Answer = number | null | { error: string } | undefined;
type Answerer = (query: string) => Answer | Promise<Answer>;

/** A Prometheus-compatible instant-query API: `GET /api/v1/query?query=...`. */
export async function startPrometheus(): Promise<PrometheusServer> {
  const queries: string[] = [];
  const answerers: Answerer[] = [];
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    res.setHeader('content-type', 'application/json');
    if (url.pathname !== '/api/v1/query') {
      res.statusCode = 404;
      return void res.end('{"status":"error","errorType":"not_found","error":"not found"}');
    }
    const query = url.searchParams.get('query') ?? '';
    queries.push(query);
    let answered: Answer;
    for (const a of answerers) if ((answered = await a(query)) !== undefined) break;
    const value = answered === undefined ? 0 : answered;
    const now = Date.now() / 1000;
    if (value !== null && typeof value === 'object') {
      res.statusCode = 400;
      return void res.end(JSON.stringify({ status: 'error', errorType: 'bad_data', error: value.error }));
    }
    res.end(
      JSON.stringify({
        status: 'success',
        data: {
          resultType: 'vector',
          result: value === null ? [] : [{ metric: {}, value: [now, String(value)] }],
        },
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    queries,
    answer: (fn) => void answerers.push(fn),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
