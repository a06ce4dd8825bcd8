import { RouteNotFoundError } from '../../router/router';
import { candidateOf, stableOf } from '../../../store/routing-state';
import { forbidden } from '../errors';
import type { GatewayContext } from './context';
import { formatTarget, routeError } from './route-error';

/** `GET /v1/routes/:name`: the routing state this replica serves from (version, stable, candidate, share). */
export function registerRouteState(ctx: GatewayContext): void {
  // What THIS replica serves for a route now (from its routing cache): for operators and the propagation bench.
  ctx.app.get<{ Params: { name: string } }>(
    '/v1/routes/:name',
    { onRequest: ctx.authenticate },
    async (request, reply) => {
      ctx.authorize(request, request.params.name);
      // Both slots' targets and the share: what arms exist is for keys that may see arms.
      const principal = ctx.principal(request);
      if (principal && !principal.armHeaders)
        throw forbidden(`API key "${principal.name}" may not read routing state (it needs armHeaders)`, null);
      const state = ctx.router.state(request.params.name);
      if (!state)
        throw routeError(
          ctx,
          request,
          reply,
          request.params.name,
          new RouteNotFoundError(request.params.name),
        );
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
}
