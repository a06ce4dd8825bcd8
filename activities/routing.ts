import { ApplicationFailure } from '@temporalio/activity';
import type pg from 'pg';
import {
  candidateSlotOf,
  changeRoute,
  getRoute,
  RouteNotFoundError,
  RoutingConflictError,
  type RoutePatch,
  type RouteState,
  type SlotConfig,
  type SlotName,
} from '../src/store/routing-state';
import { formatTarget } from '../src/decision/config/target';
import { endpointIssues, slotTargets } from '../src/data-plane/providers/providers-file';
import type { ProviderRegistry } from '../src/data-plane/providers/registry';

/**
 * Routing changes made by rollouts. Every forward step is a compare-and-set on the version the workflow last
 * saw, fenced by ownership, with an idempotency key per step: a retry after a lost reply gets its own change
 * back, and a late retry of "set canary to 20%" after a rollback meets a newer version and is refused.
 */
export interface RoutingDeps {
  pool: pg.Pool;
  /**
   * The worker's provider configuration: a candidate target naming a `baseUrl` off its allowlist is refused
   * before the route is touched (a rollout may be started by any Temporal client, not only the CLI).
   */
  providers?: Pick<ProviderRegistry, 'endpointProblem'>;
}

export interface RouteClaim {
  version: number;
  stableSlot: SlotName;
  candidateSlot: SlotName;
  stable: string;
  candidate: string;
}

export interface RoutingStepRequest {
  route: string;
  owner: string;
  /** Unique per change within a run: `<runId>:<step name>`. */
  idempotencyKey: string;
  expectedVersion: number;
  patch: RoutePatch;
  actor: string;
  reason: string;
}

export interface RestoreRequest {
  route: string;
  owner: string;
  idempotencyKey: string;
  /** The slot that was stable before the rollout started. */
  stableSlot: SlotName;
  actor: string;
  reason: string;
}

function summarize(state: RouteState): RouteClaim {
  const candidateSlot = candidateSlotOf(state);
  const stable = state.stableSlot === 'blue' ? state.blue : state.green!;
  const candidate = candidateSlot === 'blue' ? state.blue : state.green;
  return {
    version: state.version,
    stableSlot: state.stableSlot,
    candidateSlot,
    stable: formatTarget(stable.target),
    candidate: candidate ? formatTarget(candidate.target) : '',
  };
}

function asFailure(err: unknown): never {
  if (err instanceof RouteNotFoundError) throw ApplicationFailure.nonRetryable(err.message, 'RouteNotFound');
  if (err instanceof RoutingConflictError)
    throw ApplicationFailure.nonRetryable(err.message, 'RoutingConflict', {
      owner: err.owner,
      actualVersion: err.actualVersion,
    });
  if (err instanceof Error && err.name === 'RoutingValidationError')
    throw ApplicationFailure.nonRetryable(err.message, 'RoutingValidation');
  throw err;
}

export function createRoutingActivities(deps: RoutingDeps) {
  const { pool } = deps;
  return {
    /**
     * Takes ownership of the route for this rollout and puts the candidate in the non-stable slot, with
     * no traffic yet (share 0, no shadow) and a fresh salt so a new set of users forms the canary.
     */
    async claimRoute(req: {
      route: string;
      owner: string;
      idempotencyKey: string;
      candidate: SlotConfig;
      salt: string;
      actor: string;
    }): Promise<RouteClaim> {
      if (deps.providers) {
        const issues = endpointIssues(deps.providers, slotTargets('candidate', req.candidate));
        if (issues.length > 0)
          throw ApplicationFailure.nonRetryable(
            `invalid rollout spec: ${issues.map((i) => `${i.field}: ${i.reason}`).join('; ')}`,
            'RoutingValidation',
          );
      }
      try {
        const current = await getRoute(pool, req.route);
        if (!current) throw new RouteNotFoundError(req.route);
        if (current.owner && current.owner !== req.owner) {
          throw ApplicationFailure.nonRetryable(
            `route "${req.route}" is owned by ${current.owner}; wait for it to end or roll it back`,
            'RouteOwned',
          );
        }
        const slot = candidateSlotOf(current);
        const state = await changeRoute(pool, req.route, {
          expectedVersion: current.version,
          requireOwner: current.owner,
          idempotencyKey: req.idempotencyKey,
          patch: { [slot]: req.candidate, canaryBps: 0, shadowRate: 0, salt: req.salt, owner: req.owner },
          actor: req.actor,
          reason: `rollout ${req.owner} claims the route with candidate ${formatTarget(req.candidate.target)} in the ${slot} slot`,
        });
        return summarize(state);
      } catch (err) {
        asFailure(err);
      }
    },

    /** One forward step (shadow rate, canary share, stable-slot flip): compare-and-set, owner-fenced. */
    async applyRouting(req: RoutingStepRequest): Promise<number> {
      try {
        const state = await changeRoute(pool, req.route, {
          expectedVersion: req.expectedVersion,
          requireOwner: req.owner,
          idempotencyKey: req.idempotencyKey,
          patch: req.patch,
          actor: req.actor,
          reason: req.reason,
        });
        return state.version;
      } catch (err) {
        asFailure(err);
      }
    },

    /**
     * Rollback or cleanup: the previous stable slot takes all traffic, no canary, no shadow, and the route is
     * released. It re-reads the version (a rollback must win over anything this rollout did before), but
     * stays owner-fenced so it never undoes another rollout's work.
     */
    async restoreStable(req: RestoreRequest): Promise<number> {
      for (let attempt = 0; ; attempt++) {
        const current = await getRoute(pool, req.route);
        if (!current)
          throw ApplicationFailure.nonRetryable(`route "${req.route}" no longer exists`, 'RouteNotFound');
        if (current.owner !== req.owner) {
          if (
            current.owner === null &&
            current.stableSlot === req.stableSlot &&
            current.canaryBps === 0 &&
            current.shadowRate === 0
          ) {
            return current.version; // already restored (a retry after a lost reply)
          }
          throw ApplicationFailure.nonRetryable(
            `route "${req.route}" is now owned by ${current.owner ?? 'nobody'}; not touching it`,
            'RouteOwned',
          );
        }
        try {
          const state = await changeRoute(pool, req.route, {
            expectedVersion: current.version,
            requireOwner: req.owner,
            idempotencyKey: req.idempotencyKey,
            patch: { stableSlot: req.stableSlot, canaryBps: 0, shadowRate: 0, owner: null },
            actor: req.actor,
            reason: req.reason,
          });
          return state.version;
        } catch (err) {
          // A concurrent step of this same rollout moved the version: read again and win.
          if (err instanceof RoutingConflictError && err.kind === 'version' && attempt < 5) continue;
          asFailure(err);
        }
      }
    },

    /** Ends ownership after a completed rollout, keeping the routing as it is. */
    async releaseRoute(req: {
      route: string;
      owner: string;
      idempotencyKey: string;
      expectedVersion: number;
      actor: string;
      reason: string;
    }): Promise<number> {
      try {
        const state = await changeRoute(pool, req.route, {
          expectedVersion: req.expectedVersion,
          requireOwner: req.owner,
          idempotencyKey: req.idempotencyKey,
          patch: { owner: null, shadowRate: 0 },
          actor: req.actor,
          reason: req.reason,
        });
        return state.version;
      } catch (err) {
        asFailure(err);
      }
    },

    /**
     * The guardian's switch back to the other slot after the promoted model degraded. Only on a route that
     * no rollout owns (a running rollout has its own triggers), and only from the version the guardian read.
     */
    async switchStableSlot(req: {
      route: string;
      toSlot: SlotName;
      expectedVersion: number;
      idempotencyKey: string;
      actor: string;
      reason: string;
    }): Promise<number> {
      try {
        const state = await changeRoute(pool, req.route, {
          expectedVersion: req.expectedVersion,
          requireOwner: null,
          idempotencyKey: req.idempotencyKey,
          patch: { stableSlot: req.toSlot, canaryBps: 0, shadowRate: 0 },
          actor: req.actor,
          reason: req.reason,
        });
        return state.version;
      } catch (err) {
        asFailure(err);
      }
    },

    async readRoute(
      route: string,
    ): Promise<(RouteClaim & { owner: string | null; canaryBps: number }) | null> {
      const state = await getRoute(pool, route);
      return state ? { ...summarize(state), owner: state.owner, canaryBps: state.canaryBps } : null;
    },
  };
}
