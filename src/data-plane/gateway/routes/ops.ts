import type { FastifyInstance } from 'fastify';
import type { Logger } from '../../../logger';
import type { Router } from '../../router/router';
import { publicHealth, publicReadiness, servesRoutes } from '../edges';

/** `/healthz`, `/readyz`, `/livez` and `/metrics`, on the public app or on the admin listener. */
export function registerOps(target: FastifyInstance, router: Router, log: Logger): void {
  let degradedLoggedAt = 0;
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
