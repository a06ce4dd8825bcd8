import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../../logger';
import type { Router } from '../../router/router';
import type { ApiKeyPrincipal } from '../api-keys';
import type { GatewayError } from '../errors';
import type { ServedReceipts } from '../receipts';

/**
 * What the route modules (one file per route group in this folder) share: built once per gateway by
 * server.ts, which owns the Fastify app, the body parser, authentication and the error handler.
 */
export interface GatewayContext {
  app: FastifyInstance;
  router: Router;
  log: Logger;
  /** Send the upstream's response bytes as they came when no translation is needed. */
  passThrough: boolean;
  feedbackWindowMs: number;
  receipts: ServedReceipts;
  /** onRequest hook: the caller's key, checked before the body is read. */
  authenticate(request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void;
  /** The caller's key (undefined with auth disabled: everything allowed). */
  principal(request: FastifyRequest): ApiKeyPrincipal | undefined;
  /** Throws a 403 unless the caller's key may call `route` (and send evaluation metadata, when it does). */
  authorize(request: FastifyRequest, route: string, referenceId?: string): void;
  /** May the caller see which arm answered (arm headers, the answering model, target names)? */
  armVisible(request: FastifyRequest): boolean;
  /** `headers` without `x-rollout-tag` / `x-rollout-target` for a caller that may not see arms. */
  withoutArm<T extends Record<string, unknown>>(request: FastifyRequest, headers: T): T;
  sendError(reply: FastifyReply, error: GatewayError): FastifyReply;
  countError(status: number, code: string | null): void;
  /** A request was answered (or failed) for the caller: a stable one gets a feedback receipt. */
  served(request: FastifyRequest, decision: { tag: string; requestId: string }): void;
}
