/**
 * `POST /v1/chat/completions`: JSON or SSE (`stream: true`); `model` names the route; the routing key is
 * `x-rollout-key` or `user`; `metadata.reference_id` marks a question with a known answer. The whole Chat
 * Completions surface: the body goes upstream as written, `model` aside. The upstream's bytes are passed
 * through when no translation is needed; for keys that may not see arms the arm's marks are spliced out
 * (arm-mask.ts).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { OpenAIChatBody } from '../../providers';
import type { RouterRequest, RouterResult } from '../../router/router';
import { maskArmJson, maskArmSse, type ArmMask } from '../arm-mask';
import { ClientGone } from '../client-gone';
import { ROUTING_KEY_MAX } from '../edges';
import { invalidBody, type GatewayError } from '../errors';
import { RAW_BODY } from '../json-body';
import { ChunkWriter, completionJson } from '../openai-format';
import { readChatCompletion, toMessages } from '../schema';
import { writeChunk } from '../write-chunk';
import type { GatewayContext } from './context';
import { routeError } from './route-error';
import { startRequestSpan } from '../request-span';
import type { Attempt } from '../../providers/errors';

/** The error class and attempts of a failed route call, for its span. */
function failureOf(err: unknown): [string, Attempt[] | undefined] {
  const e = err as { errorClass?: string; error?: { attempts?: Attempt[] }; name?: string };
  return [e.errorClass ?? e.name ?? 'error', e.error?.attempts];
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function registerChatCompletions(ctx: GatewayContext): void {
  ctx.app.post('/v1/chat/completions', { onRequest: ctx.authenticate }, async (request, reply) => {
    const body = readChatCompletion(request.body);
    ctx.authorize(request, body.model, body.metadata?.reference_id ?? undefined);
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
      caller: ctx.principal(request)?.name,
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
    const span = startRequestSpan(body.model, false);
    let result: RouterResult;
    try {
      result = await ctx.router.complete(body.model, routed);
    } catch (err) {
      span?.failed(...failureOf(err));
      throw routeError(ctx, request, reply, body.model, err);
    } finally {
      gone.done();
    }
    span?.answered(result, result.result, result.shadow);
    ctx.served(request, result);
    reply.headers(
      ctx.withoutArm(request, {
        'x-rollout-route': result.route,
        'x-rollout-tag': result.tag,
        'x-rollout-target': result.target,
        'x-request-id': result.requestId,
      }),
    );
    if (!ctx.armVisible(request)) {
      // The body's `model`, `id` and `system_fingerprint` would name the arm: the route's marks instead.
      const mask: ArmMask = { requestId: result.requestId, route: result.route };
      return reply
        .type('application/json')
        .send(
          ctx.passThrough && result.upstream
            ? maskArmJson(result.upstream.body.toString('utf8'), mask)
            : completionJson(result, mask),
        );
    }
    if (ctx.passThrough && result.upstream)
      return reply.type(result.upstream.contentType).send(result.upstream.body);
    return reply.type('application/json').send(completionJson(result));
  });

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
    const span = startRequestSpan(route, true);
    let stream;
    try {
      stream = ctx.router.stream(route, routed);
    } catch (err) {
      gone.done();
      span?.failed(...failureOf(err));
      throw routeError(ctx, request, reply, route, err);
    }
    const { decision } = stream;
    const masked = !ctx.armVisible(request);
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
              ctx.withoutArm(request, {
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
          span?.answered(decision, event.result.result, event.result.shadow);
          ctx.served(request, decision);
          if (!writer) {
            // An empty answer that passed the quality check: still a valid stream.
            writer = new ChunkWriter(decision.requestId, masked ? route : event.result.model, masked);
            reply.hijack();
            res.writeHead(
              200,
              ctx.withoutArm(request, {
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
          span?.failed(...failureOf(event.error));
          const error = routeError(ctx, request, reply, route, event.error) as GatewayError;
          if (!writer) return ctx.sendError(reply, error); // nothing sent yet: a plain HTTP error
          // Mid-stream: the status is gone; an error event makes the client raise instead of keeping a cut answer.
          ctx.countError(error.status, error.code);
          res.end(`data: ${JSON.stringify(error.body())}\n\n`);
        }
        if (gone.aborted) break;
      }
    } finally {
      gone.done();
      span?.failed(gone.aborted ? 'client_cancelled' : 'stream_ended'); // no-op once answered or failed
      if (writer && !res.writableEnded) res.end();
    }
  }
}
