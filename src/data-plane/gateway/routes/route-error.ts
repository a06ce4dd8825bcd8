import type { FastifyReply, FastifyRequest } from 'fastify';
import { RouteCallError, RouteNotFoundError } from '../../router/router';
import { GatewayError, fromProviderError } from '../errors';
import type { GatewayContext } from './context';

/** `provider:model` (config/target.ts has the same, but loads zod with it). */
export const formatTarget = (t: { provider: string; model: string }) => `${t.provider}:${t.model}`;

/** Maps a router failure to an OpenAI error, setting the routing headers known so far. */
export function routeError(
  ctx: GatewayContext,
  request: FastifyRequest,
  reply: FastifyReply,
  route: string,
  err: unknown,
): unknown {
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
    ctx.served(request, err.decision);
    reply.headers(
      ctx.withoutArm(request, {
        'x-rollout-route': err.decision.route,
        'x-rollout-tag': err.decision.tag,
        'x-rollout-target': err.target,
        'x-request-id': err.decision.requestId,
      }),
    );
    return fromProviderError(
      err.error,
      route,
      ctx.armVisible(request)
        ? {}
        : { hideTargets: err.decision.targets.flatMap((t) => [formatTarget(t), t.model]) },
    );
  }
  return err;
}
