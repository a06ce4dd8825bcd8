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
 */
import { Counter } from '../router/prom-classes';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { OpenAIChatBody } from '../providers';
import { writeChunk } from './write-chunk';
import { logger as rootLogger, type Logger } from '../../logger';
import {
  RouteCallError,
  RouteNotFoundError,
  type Router,
  type RouterRequest,
  type RouterResult,
} from '../router/router';
import { candidateOf, stableOf } from '../../store/routing-state';
import { ClientGone } from './client-gone';
import {
  apiKeyStoreFromEnv,
  createApiKeyStore,
  mayCallRoute,
  type ApiKeyPrincipal,
  type ApiKeyStore,
} from './api-keys';
import {
  clientErrorHandler,
  connectionLimits,
  httpServerFactory,
  publicHealth,
  publicReadiness,
  ROUTING_KEY_MAX,
  servesRoutes,
  type ConnectionLimits,
} from './edges';
import { GatewayError, fromProviderError, invalidBody, unauthorized } from './errors';
import { DEFAULT_FEEDBACK_WINDOW_MS, storeFeedback } from './feedback';
import { ServedReceipts } from './receipts';
import { duplicateTopLevelKey } from './duplicate-keys';
import { ChunkWriter, completionJson } from './openai-format';
import { maskArmJson, maskArmSse, type ArmMask } from './arm-mask';
import { readChatCompletion, readFeedback, toMessages } from './schema';

/** `provider:model` (config/target.ts has the same, but loads zod with it). */
const formatTarget = (t: { provider: string; model: string }) => `${t.provider}:${t.model}`;

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

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

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
/** The request body's text, kept on its parse. */
const RAW_BODY: unique symbol = Symbol('raw body');

export function createGateway(options: GatewayOptions): Gateway {
  const { router } = options;
  const log = (options.logger ?? rootLogger).child({ component: 'gateway' });
  const passThrough = options.passThrough ?? true;
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

  // Plain JSON.parse instead of fastify's prototype-poisoning scan: JSON.parse makes `__proto__` an own
  // data property (it never sets a prototype), and bodies are only read or copied by spreading, which
  // copies it as data too. The text is kept beside the parse (under a symbol, invisible to JSON) so a
  // forwarded body is spliced, not re-serialized.
  // Only JSON is taken (fastify would also parse text/plain into a string): anything else gets a 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity')
      return done(
        new GatewayError(
          415,
          'invalid_request_error',
          'unsupported_content_encoding',
          `content-encoding "${encoding.slice(0, 40)}" is not supported; send the JSON body uncompressed`,
        ),
        undefined,
      );
    if (body === '') return done(invalidBody('the request body is empty; send a JSON object'), undefined);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body as string);
    } catch {
      return done(invalidBody('the request body is not valid JSON'), undefined);
    }
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const twice = duplicateTopLevelKey(body as string, parsed);
      if (twice !== undefined)
        return done(
          new GatewayError(
            400,
            'invalid_request_error',
            'duplicate_key',
            `the request body has the key "${twice.slice(0, 64)}" more than once; send each key once`,
            twice.slice(0, 64),
          ),
          undefined,
        );
      (parsed as Record<symbol, unknown>)[RAW_BODY] = body;
    }
    done(null, parsed);
  });

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

  app.post('/v1/chat/completions', { onRequest: authenticate }, async (request, reply) => {
    const body = readChatCompletion(request.body);
    authorize(request, body.model, body.metadata?.reference_id ?? undefined);
    const original = request.body as OpenAIChatBody & { [RAW_BODY]?: string };
    const headerKey = request.headers['x-rollout-key'];
    const routingKey =
      typeof headerKey === 'string' && headerKey !== '' ? headerKey : (body.user ?? undefined);
    if (routingKey !== undefined && routingKey.length > ROUTING_KEY_MAX) {
      throw invalidBody(
        `the routing key (x-rollout-key header or user) is longer than ${ROUTING_KEY_MAX} characters`,
        typeof headerKey === 'string' && headerKey !== '' ? 'x-rollout-key' : 'user',
      );
    }
    const requestIdHeader = request.headers['x-request-id'];
    const routed: RouterRequest = {
      messages: toMessages(body.messages),
      openai: { body: original, raw: original[RAW_BODY] },
      key: routingKey,
      // The request id is always ours (the router makes one); the client's is kept for its correlation.
      clientRequestId:
        typeof requestIdHeader === 'string' && REQUEST_ID.test(requestIdHeader) ? requestIdHeader : undefined,
      caller: principals.get(request)?.name,
      referenceId: body.metadata?.reference_id,
    };
    if (body.stream)
      return streamCompletion(
        request,
        reply,
        body.model,
        routed,
        body.stream_options?.include_usage === true,
      );

    // A client that hangs up cancels the upstream call (no tokens paid for an answer nobody reads).
    const gone = new ClientGone(reply.raw);
    routed.signal = gone;
    let result: RouterResult;
    try {
      result = await router.complete(body.model, routed);
    } catch (err) {
      throw routeError(request, reply, body.model, err);
    } finally {
      gone.done();
    }
    served(request, result);
    reply.headers(
      withoutArm(request, {
        'x-rollout-route': result.route,
        'x-rollout-tag': result.tag,
        'x-rollout-target': result.target,
        'x-request-id': result.requestId,
      }),
    );
    if (!armVisible(request)) {
      // The body's `model`, `id` and `system_fingerprint` would name the arm: the route's marks instead.
      const mask: ArmMask = { requestId: result.requestId, route: result.route };
      return reply
        .type('application/json')
        .send(
          passThrough && result.upstream
            ? maskArmJson(result.upstream.body.toString('utf8'), mask)
            : completionJson(result, mask),
        );
    }
    if (passThrough && result.upstream)
      return reply.type(result.upstream.contentType).send(result.upstream.body);
    return reply.type('application/json').send(completionJson(result));
  });

  // OpenAI clients discover models here; a route is what they pass as `model`.
  // A key sees only the routes it may call.
  app.get('/v1/models', { onRequest: authenticate }, async (request, reply) => {
    const principal = principals.get(request);
    const routes = router.routes();
    const visible = principal ? routes.filter((state) => mayCallRoute(principal, state.name)) : routes;
    const data = visible.map((state) => ({
      id: state.name,
      object: 'model',
      created: Math.floor(state.updatedAt.getTime() / 1000),
      owned_by: 'model-rollout',
    }));
    return reply.send({ object: 'list', data });
  });

  /** Maps a router failure to an OpenAI error, setting the routing headers known so far. */
  function routeError(request: FastifyRequest, reply: FastifyReply, route: string, err: unknown): unknown {
    if (err instanceof RouteNotFoundError) {
      return new GatewayError(
        404,
        'invalid_request_error',
        'model_not_found',
        `route "${route}" does not exist`,
        'model',
      );
    }
    if (err instanceof RouteCallError) {
      served(request, err.decision);
      reply.headers(
        withoutArm(request, {
          'x-rollout-route': err.decision.route,
          'x-rollout-tag': err.decision.tag,
          'x-rollout-target': err.target,
          'x-request-id': err.decision.requestId,
        }),
      );
      return fromProviderError(
        err.error,
        route,
        armVisible(request)
          ? {}
          : { hideTargets: err.decision.targets.flatMap((t) => [formatTarget(t), t.model]) },
      );
    }
    return err;
  }

  async function streamCompletion(
    request: FastifyRequest,
    reply: FastifyReply,
    route: string,
    routed: RouterRequest,
    includeUsage: boolean,
  ): Promise<FastifyReply | void> {
    const res = reply.raw;
    const gone = new ClientGone(res);
    routed.signal = gone;
    let stream;
    try {
      stream = router.stream(route, routed);
    } catch (err) {
      gone.done();
      throw routeError(request, reply, route, err);
    }
    const { decision } = stream;
    const masked = !armVisible(request);
    const mask: ArmMask = { requestId: decision.requestId, route };
    /** Upstream chunks as they came, or with the arm's marks replaced for keys that may not see arms. */
    const chunk = (sse: string) => (masked ? maskArmSse(sse, mask) : sse);
    let writer: ChunkWriter | undefined;
    try {
      for await (const event of stream) {
        if (event.type === 'delta') {
          if (!writer) {
            // Headers go out with the first delta: by then the chain has settled on the answering target.
            const model =
              decision.targets.find((t) => `${t.provider}:${t.model}` === event.target)?.model ??
              event.target;
            writer = new ChunkWriter(decision.requestId, masked ? route : model, masked);
            reply.hijack();
            res.writeHead(
              200,
              withoutArm(request, {
                'content-type': 'text/event-stream; charset=utf-8',
                'cache-control': 'no-cache',
                'x-rollout-route': decision.route,
                'x-rollout-tag': decision.tag,
                'x-rollout-target': event.target,
                'x-request-id': decision.requestId,
              }),
            );
            await writeChunk(res, event.sse !== undefined ? chunk(event.sse) : writer.first(event.text));
          } else {
            await writeChunk(res, event.sse !== undefined ? chunk(event.sse) : writer.delta(event.text));
          }
        } else if (event.type === 'done') {
          served(request, decision);
          if (!writer) {
            // An empty answer that passed the quality check: still a valid stream.
            writer = new ChunkWriter(decision.requestId, masked ? route : event.result.model, masked);
            reply.hijack();
            res.writeHead(
              200,
              withoutArm(request, {
                'content-type': 'text/event-stream; charset=utf-8',
                'cache-control': 'no-cache',
                'x-rollout-route': decision.route,
                'x-rollout-tag': decision.tag,
                'x-rollout-target': event.result.target,
                'x-request-id': decision.requestId,
              }),
            );
          }
          res.end(
            event.sseTail !== undefined
              ? `${chunk(event.sseTail)}data: [DONE]\n\n`
              : writer.end(event.result, includeUsage),
          );
        } else {
          const error = routeError(request, reply, route, event.error) as GatewayError;
          if (!writer) return sendError(reply, error); // nothing sent yet: a plain HTTP error
          // Mid-stream: the status is gone; an error event makes the client raise instead of keeping a cut answer.
          countError(error.status, error.code);
          res.end(`data: ${JSON.stringify(error.body())}\n\n`);
        }
        if (gone.aborted) break;
      }
    } finally {
      gone.done();
      if (writer && !res.writableEnded) res.end();
    }
  }

  const feedbackStore = {
    pool: router.pool,
    windowMs: options.feedbackWindowMs ?? DEFAULT_FEEDBACK_WINDOW_MS,
    flush: () => router.flush(),
    receipts,
  };
  const feedback = (mode: 'create' | 'update') => async (request: FastifyRequest, reply: FastifyReply) => {
    const fb = readFeedback(request.body);
    try {
      const stored = await storeFeedback(feedbackStore, fb, principals.get(request)?.name ?? null, mode);
      return reply.code(mode === 'create' ? 201 : 200).send(stored);
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      log.warn({ err: (err as Error).message }, 'feedback not stored');
      throw new GatewayError(
        503,
        'server_error',
        'feedback_unavailable',
        'feedback could not be stored; try again later',
      );
    }
  };
  app.post('/v1/feedback', { onRequest: authenticate }, feedback('create'));
  app.put('/v1/feedback', { onRequest: authenticate }, feedback('update'));

  // What THIS replica serves for a route now (from its routing cache): for operators and the propagation bench.
  app.get<{ Params: { name: string } }>(
    '/v1/routes/:name',
    { onRequest: authenticate },
    async (request, reply) => {
      authorize(request, request.params.name);
      // Both slots' targets and the share: what arms exist is for keys that may see arms.
      const principal = principals.get(request);
      if (principal && !principal.armHeaders)
        throw forbidden(`API key "${principal.name}" may not read routing state (it needs armHeaders)`, null);
      const state = router.state(request.params.name);
      if (!state)
        throw routeError(request, reply, request.params.name, new RouteNotFoundError(request.params.name));
      const stable = stableOf(state);
      const candidate = candidateOf(state);
      return reply.send({
        route: state.name,
        version: state.version,
        stableSlot: state.stableSlot,
        stable: formatTarget(stable.target),
        candidate: candidate ? formatTarget(candidate.target) : null,
        canaryBps: state.canaryBps,
        shadowRate: state.shadowRate,
        owner: state.owner,
      });
    },
  );

  /** `/healthz` and `/metrics`, on the public app or on the admin listener. */
  let degradedLoggedAt = 0;
  function registerOps(target: FastifyInstance): void {
    target.get('/healthz', async (_request, reply) => {
      const h = await router.health();
      // The reasons' details (database errors name hosts and databases) go to the log, not to callers; one
      // line per 30 s, however often a probe asks during an outage.
      if (!h.ok && Date.now() - degradedLoggedAt >= 30_000) {
        degradedLoggedAt = Date.now();
        log.warn(
          {
            routing: h.routing.lastError,
            postgres: h.postgres.error,
            stalenessSeconds: Math.round(h.routing.stalenessMs / 1000),
          },
          'gateway degraded',
        );
      }
      return reply.code(servesRoutes(h) ? 200 : 503).send(publicHealth(h));
    });
    // For Kubernetes: ready while it can route (the /healthz rule), alive while the process answers.
    target.get('/readyz', async (_request, reply) => {
      const h = await router.health();
      return reply.code(servesRoutes(h) ? 200 : 503).send(publicReadiness(h));
    });
    target.get('/livez', async (_request, reply) => reply.send({ status: 'alive' }));
    target.get('/metrics', async (_request, reply) => {
      return reply.type(router.metrics.contentType).send(await router.metrics.text());
    });
  }
  let admin: FastifyInstance | undefined;
  if (options.separateAdmin) {
    admin = Fastify({
      logger: false,
      ...limits.fastify,
      serverFactory: httpServerFactory(limits),
      schemaController,
    });
    registerOps(admin);
  } else {
    registerOps(app);
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

const forbidden = (message: string, param: string | null) =>
  new GatewayError(403, 'permission_error', 'permission_denied', message, param);
