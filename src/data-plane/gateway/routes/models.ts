import { mayCallRoute } from '../api-keys';
import type { GatewayContext } from './context';

/** `GET /v1/models`: the routes, as OpenAI's model list (what clients call to discover models). */
export function registerModels(ctx: GatewayContext): void {
  // OpenAI clients discover models here; a route is what they pass as `model`.
  // A key sees only the routes it may call.
  ctx.app.get('/v1/models', { onRequest: ctx.authenticate }, async (request, reply) => {
    const principal = ctx.principal(request);
    const routes = ctx.router.routes();
    const visible = principal ? routes.filter((state) => mayCallRoute(principal, state.name)) : routes;
    const data = visible.map((state) => ({
      id: state.name,
      object: 'model',
      created: Math.floor(state.updatedAt.getTime() / 1000),
      owned_by: 'model-rollout',
    }));
    return reply.send({ object: 'list', data });
  });
}
