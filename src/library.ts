/**
 * What an application imports to route in-process (`import { createRouter } from 'model-rollout'`): the
 * router the gateway uses, without the HTTP hop. It reads the routing state the rollouts write to the shared
 * Postgres (LISTEN/NOTIFY and a poll), so a rollout, a promotion or a rollback reaches the application's
 * process as it reaches every gateway, and records one request event per call for the rollouts' statistics.
 * See examples/in-process/app.ts.
 */
export {
  createRouter,
  RouteCallError,
  RouteNotFoundError,
  type Router,
  type RouterOptions,
  type RouterRequest,
  type RouterResult,
  type RouterStream,
  type RouterStreamEvent,
  type RouteDecision,
} from './data-plane/router/router';
export { openDatabase, type Database } from './store/database';
export { migrate } from './store/migrate';
export { deploymentRegistry } from './data-plane/providers/providers-file';
export {
  createProviderRegistry,
  simulatorRegistry,
  type ProviderRegistry,
} from './data-plane/providers/registry';
export type { ChatMessage, TargetParams } from './data-plane/providers/types';
