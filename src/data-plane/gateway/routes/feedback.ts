/**
 * `POST /v1/feedback` { request_id, score 1-5 | thumbs up/down, comment? }: once per request, only for a
 * request served to the same API key, within the feedback window; `PUT /v1/feedback` replaces it.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '../errors';
import { storeFeedback } from '../feedback';
import { readFeedback } from '../schema';
import type { GatewayContext } from './context';

export function registerFeedback(ctx: GatewayContext): void {
  const feedbackStore = {
    pool: ctx.router.pool,
    windowMs: ctx.feedbackWindowMs,
    flush: () => ctx.router.flush(),
    receipts: ctx.receipts,
  };
  const feedback = (mode: 'create' | 'update') => async (request: FastifyRequest, reply: FastifyReply) => {
    const fb = readFeedback(request.body);
    try {
      const stored = await storeFeedback(feedbackStore, fb, ctx.principal(request)?.name ?? null, mode);
      return reply.code(mode === 'create' ? 201 : 200).send(stored);
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      ctx.log.warn({ err: (err as Error).message }, 'feedback not stored');
      throw new GatewayError(
        503,
        'server_error',
        'feedback_unavailable',
        'feedback could not be stored; try again later',
      );
    }
  };
  ctx.app.post('/v1/feedback', { onRequest: ctx.authenticate }, feedback('create'));
  ctx.app.put('/v1/feedback', { onRequest: ctx.authenticate }, feedback('update'));
}
