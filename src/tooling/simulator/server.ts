import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { logger } from '../../logger';
import { handleAdmin } from './admin';
import { handleCompletion } from './completion';
import { sendJson } from './http';
import type { ModelBehaviour, Scenario } from './scenario';
import { SimulatorState, type ReceivedRequest, type SimulatorStats } from './state';
import { anthropicWire } from './wire/anthropic';
import type { WireFormat } from './wire/format';
import { openaiWire } from './wire/openai';

/**
 * The provider simulator: one local HTTP server speaking the OpenAI and Anthropic wire formats, with
 * scripted latency, errors and answer quality, so that everything runs with the real SDKs and no
 * network. Requests never block one another: latencies and held-open `timeout` requests are timers.
 */

export interface SimulatorOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  scenario?: Scenario;
}

export interface SimulatorHandle {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `url + '/v1'`, for `new OpenAI({ baseURL })`. */
  openaiBaseUrl: string;
  /** `url`, for `new Anthropic({ baseURL })` (the SDK appends `/v1/messages`). */
  anthropicBaseUrl: string;
  /** Replaces one model's behaviour (layered over the scenario's default); throws on invalid input. */
  setBehaviour(model: string, behaviour: ModelBehaviour): void;
  /** Back to the start scenario; also clears the statistics and restarts the seeded dice sequence. */
  reset(): void;
  stats(): SimulatorStats;
  /** The last request bodies the chat endpoints received (at most 100), oldest first. */
  received(): ReceivedRequest[];
  close(): Promise<void>;
}

// Google's and DeepSeek's OpenAI-compatible endpoints live under different prefixes.
const COMPLETION_ROUTES = new Map<string, WireFormat>([
  ['/v1/chat/completions', openaiWire],
  ['/v1beta/openai/chat/completions', openaiWire],
  ['/chat/completions', openaiWire],
  ['/v1/messages', anthropicWire],
]);

export async function startSimulator(options: SimulatorOptions = {}): Promise<SimulatorHandle> {
  const state = new SimulatorState(options.scenario);
  const server = http.createServer((req, res) => {
    route(req, res, state).catch((error: unknown) => {
      logger.error({ err: error, path: req.url }, 'simulator request failed');
      if (!res.headersSent) sendJson(res, 500, { error: { message: 'simulator internal error' } });
      else res.destroy();
    });
  });

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.debug({ url }, 'simulator listening');

  return {
    url,
    openaiBaseUrl: `${url}/v1`,
    anthropicBaseUrl: url,
    setBehaviour: (model, behaviour) => state.setBehaviour(model, behaviour),
    reset: () => state.reset(),
    stats: () => state.stats(),
    received: () => state.received(),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive sockets and held-open `timeout` requests would otherwise keep close() waiting.
        server.closeAllConnections();
      }),
  };
}

async function route(req: IncomingMessage, res: ServerResponse, state: SimulatorState): Promise<void> {
  const path = (req.url ?? '/').split('?', 1)[0];
  const wire = COMPLETION_ROUTES.get(path);
  if (wire) {
    if (req.method !== 'POST')
      return sendJson(res, 405, { error: { message: `${req.method} not allowed; use POST` } });
    return handleCompletion(req, res, wire, state);
  }
  if (path === '/healthz') return sendJson(res, 200, { ok: true });
  if (await handleAdmin(req, res, path, state)) return;
  sendJson(res, 404, { error: { message: `no route for ${req.method} ${path}` } });
}
