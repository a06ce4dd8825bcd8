/**
 * The GATEWAY: an OpenAI-compatible HTTP server in front of the router, so an application moves onto
 * rollouts by changing its base URL. `model` names the route.
 *
 *   POST /v1/chat/completions   JSON or SSE (`stream: true`); routing key from `x-rollout-key` or `user`;
 *                               `metadata.reference_id` marks a question with a known answer. The whole
 *                               Chat Completions surface: the body goes upstream as written, `model` aside
 *   GET  /v1/models             the routes, as OpenAI's model list (what clients call to discover models)
 *   POST /v1/feedback           { request_id, score 1-5 | thumbs up/down, comment? }: once per request,
 *                               only for a request served to the same API key, within the feedback window
 *   PUT  /v1/feedback           the same, replacing the request's feedback
 *   GET  /v1/routes/:name       the routing state this replica serves from (version, stable, candidate, share)
 *   GET  /healthz               200 while it can route (status ok|degraded, stale, stalenessSeconds), 503 when it cannot
 *   GET  /readyz                the same status code, a short body ({ ready, waitingFor, stale })
 *   GET  /livez                 200 while the process answers
 *   GET  /metrics               Prometheus
 *
 * Every response of a routed call carries `x-rollout-route`, `x-rollout-tag`, `x-rollout-target` (the
 * target that actually answered, or was tried last; both only for keys allowed to see arms) and
 * `x-request-id` (the gateway's own id, which feedback refers to; the `openai` client exposes it as
 * `_request_id`). A client's own `x-request-id` never becomes the request's id (it could collide with
 * another's): it is recorded beside the event for correlation. Every error is an OpenAI-style error body.
 *
 * Hot path: the router's lean undici transport; the upstream's JSON bytes are passed through untouched
 * when no translation is needed (see `passThrough`); no per-request logging.
 *
 * This file owns the Fastify app, the JSON body parser (json-body.ts), authentication and the error
 * handler; each route group is a module under routes/ that gets a `GatewayContext`.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { logger as rootLogger, type Logger } from '../../logger';
import { Counter } from '../router/prom-classes';
import type { Router } from '../router/router';
import {
  apiKeyStoreFromEnv,
  createApiKeyStore,
  mayCallRoute,
  type ApiKeyPrincipal,
  type ApiKeyStore,
} from './api-keys';
import { clientErrorHandler, connectionLimits, httpServerFactory, type ConnectionLimits } from './edges';
import { GatewayError, forbidden, unauthorized } from './errors';
import { DEFAULT_FEEDBACK_WINDOW_MS } from './feedback';
import { registerJsonBody } from './json-body';
import { ServedReceipts } from './receipts';
import { registerChatCompletions } from './routes/chat-completions';
import type { GatewayContext } from './routes/context';
import { registerFeedback } from './routes/feedback';
import { registerModels } from './routes/models';
import { registerOps } from './routes/ops';
import { registerRouteState } from './routes/route-state';

export interface GatewayOptions {
  router: Router;
  /**
   * API keys clients must send as `Authorization: Bearer <key>`: named keys with permissions (a store, see
   * `api-keys.ts`), or a flat list (every key may do everything); default from env `GATEWAY_KEYS_FILE`
   * or `GATEWAY_API_KEYS`.
   */
  auth?: { keys: string[] } | { store: ApiKeyStore } | { disabled: true };
  /** Largest request body (default 16 MiB: images travel inline as base64); larger ones get 413. */
  bodyLimitBytes?: number;
  /** Send the upstream's response bytes as they came when no translation is needed (default true). */
  passThrough?: boolean;
  /** Connection limits (see `edges.ts`): header/body/idle timeouts and the largest header block. */
  limits?: Partial<ConnectionLimits>;
  /**
   * Serve `/metrics` and `/healthz` on a listener of their own (`listenAdmin`) instead of the public one, so
   * an operator can keep them off the network clients reach.
   */
  separateAdmin?: boolean;
  /** How long after an answer its feedback is taken (default 24 h). */
  feedbackWindowMs?: number;
  /**
   * Receipts of the last this-many stable requests served (default 10 000, about 1.3 MB; 0 for none), so
   * feedback is taken for one whose event is outside the stable sample (see receipts.ts).
   */
  feedbackReceipts?: number;
  logger?: Logger;
}

export interface Gateway {
  readonly app: FastifyInstance;
  /** Resolves with the base URL (`http://host:port`). */
  listen(options?: { port?: number; host?: string }): Promise<string>;
  /** The admin listener (`/metrics`, `/healthz`) when `separateAdmin`; resolves with its base URL. */
  listenAdmin(options?: { port?: number; host?: string }): Promise<string>;
  close(): Promise<void>;
}

/**
 * The gateway's routes declare no JSON schemas (bodies are checked by hand, see schema.ts): compilers that
 * refuse one keep Fastify from loading ajv and fast-json-stringify (113 modules, about 3 MB of resident
 * memory).
 */
const refuseSchema = (): never => {
  throw new Error('gateway routes declare no JSON schemas');
};
const schemaController = {
  compilersFactory: { buildValidator: () => refuseSchema, buildSerializer: () => refuseSchema },
};

export function createGateway(options: GatewayOptions): Gateway {
  const { router } = options;
  const log = (options.logger ?? rootLogger).child({ component: 'gateway' });
  const keyStore = keyStoreOf(options.auth, (r) =>
    r.ok
      ? log.info({ keys: r.keys }, 'API keys reloaded')
      : log.error({ error: r.error }, 'API keys not reloaded; the previous keys stay in force'),
  );
  /** The caller's key (undefined with auth disabled: everything allowed). */
  const principals = new WeakMap<FastifyRequest, ApiKeyPrincipal>();
  /** Arm headers (`x-rollout-tag`, `x-rollout-target`) only for keys allowed to see them. */
  const armVisible = (request: FastifyRequest) => principals.get(request)?.armHeaders ?? true;
  const withoutArm = <T extends Record<string, unknown>>(request: FastifyRequest, headers: T): T => {
    if (armVisible(request)) return headers;
    const { 'x-rollout-tag': _tag, 'x-rollout-target': _target, ...rest } = headers;
    return rest as T;
  };

  const receipts = new ServedReceipts(options.feedbackReceipts);
  /** A stable request's event may not be a row (sampling): its receipt lets feedback find it. */
  const served = (request: FastifyRequest, decision: { tag: string; requestId: string }) => {
    if (decision.tag === 'stable') receipts.add(decision.requestId, principals.get(request)?.name ?? null);
  };

  const limits = connectionLimits(options.limits);
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimitBytes ?? 16 * 1024 * 1024,
    return503OnClosing: true,
    ...limits.fastify,
    serverFactory: httpServerFactory(limits),
    clientErrorHandler,
    // Our own ids (x-request-id); fastify's counter is unused.
    genReqId: () => '',
    schemaController,
  });

  const errorCounter =
    (router.metrics.registry.getSingleMetric('model_rollout_gateway_errors_total') as
      Counter<'status' | 'code'> | undefined) ??
    new Counter({
      name: 'model_rollout_gateway_errors_total',
      help: 'Error responses sent by the gateway, by HTTP status and error code',
      labelNames: ['status', 'code'],
      registers: [router.metrics.registry],
    });
  const countError = (status: number, code: string | null) =>
    errorCounter.labels(String(status), code ?? '').inc();

  function sendError(reply: FastifyReply, error: GatewayError): FastifyReply {
    countError(error.status, error.code);
    if (error.headers) reply.headers(error.headers);
    return reply.code(error.status).type('application/json').send(JSON.stringify(error.body()));
  }

  registerJsonBody(app);

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, _request, reply) => {
    if (error instanceof GatewayError) return sendError(reply, error);
    const status = error.statusCode ?? 500;
    if (status === 413) {
      return sendError(
        reply,
        new GatewayError(413, 'invalid_request_error', 'request_too_large', 'request body too large'),
      );
    }
    if (status >= 400 && status < 500) {
      // Body parser errors: invalid JSON, empty body, unsupported content type.
      const code =
        error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'unsupported_media_type' : 'invalid_request_body';
      return sendError(reply, new GatewayError(status, 'invalid_request_error', code, error.message));
    }
    log.error({ err: error }, 'gateway request failed');
    return sendError(
      reply,
      new GatewayError(500, 'server_error', 'internal_error', 'internal gateway error'),
    );
  });

  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      new GatewayError(
        404,
        'invalid_request_error',
        'unknown_url',
        `no route for ${request.method} ${request.url}`,
      ),
    ),
  );

  // Authentication runs before the body is read: an unauthenticated client cannot make us parse 1 MiB.
  // (A callback hook, not an async one: one promise less per request.)
  const authenticate = (
    request: FastifyRequest,
    _reply: FastifyReply,
    done: (error?: Error) => void,
  ): void => {
    if (!keyStore) return done();
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) return done(unauthorized('missing API key: send "Authorization: Bearer <key>"'));
    const principal = keyStore.lookup(match[1]);
    if (!principal) return done(unauthorized('invalid API key')); // never echo what was sent
    principals.set(request, principal);
    done();
  };

  /** 403 unless the caller's key may call `route` (and send evaluation metadata, when it does). */
  function authorize(request: FastifyRequest, route: string, referenceId?: string): void {
    const principal = principals.get(request);
    if (!principal) return;
    if (!mayCallRoute(principal, route))
      throw forbidden(`API key "${principal.name}" may not call route "${route}"`, 'model');
    if (referenceId !== undefined && !principal.evaluation)
      throw forbidden(
        `API key "${principal.name}" may not send evaluation metadata (metadata.reference_id)`,
        'metadata.reference_id',
      );
  }

  const ctx: GatewayContext = {
    app,
    router,
    log,
    passThrough: options.passThrough ?? true,
    feedbackWindowMs: options.feedbackWindowMs ?? DEFAULT_FEEDBACK_WINDOW_MS,
    receipts,
    authenticate,
    principal: (request) => principals.get(request),
    authorize,
    armVisible,
    withoutArm,
    sendError,
    countError,
    served,
  };
  registerChatCompletions(ctx);
  registerModels(ctx);
  registerFeedback(ctx);
  registerRouteState(ctx);

  let admin: FastifyInstance | undefined;
  if (options.separateAdmin) {
    admin = Fastify({
      logger: false,
      ...limits.fastify,
      serverFactory: httpServerFactory(limits),
      schemaController,
    });
    registerOps(admin, router, log);
  } else {
    registerOps(app, router, log);
  }

  return {
    app,
    async listen({ port = 8080, host = '127.0.0.1' } = {}) {
      await app.listen({ port, host });
      const address = app.server.address();
      const actual = typeof address === 'object' && address ? address.port : port;
      return `http://${host.includes(':') ? `[${host}]` : host}:${actual}`;
    },
    async listenAdmin({ port = 9090, host = '127.0.0.1' } = {}) {
      if (!admin) throw new Error('gateway: listenAdmin needs separateAdmin: true');
      await admin.listen({ port, host });
      const address = admin.server.address();
      const actual = typeof address === 'object' && address ? address.port : port;
      return `http://${host.includes(':') ? `[${host}]` : host}:${actual}`;
    },
    close: async () => {
      await app.close();
      await admin?.close();
      keyStore?.close();
    },
  };
}

/** The gateway's keys: given, from the environment, or none (auth disabled); no keys at all is refused. */
function keyStoreOf(
  auth: GatewayOptions['auth'],
  onReload: Parameters<typeof apiKeyStoreFromEnv>[1],
): ApiKeyStore | undefined {
  if (auth && 'disabled' in auth && auth.disabled) return undefined;
  if (auth && 'store' in auth) return auth.store;
  const store =
    auth && 'keys' in auth
      ? createApiKeyStore({ flat: auth.keys })
      : apiKeyStoreFromEnv(process.env, onReload);
  if (!store || store.size === 0) {
    throw new Error(
      'gateway: no API keys configured: pass auth.keys, set GATEWAY_KEYS_FILE or GATEWAY_API_KEYS, or disable auth explicitly',
    );
  }
  return store;
}
