import { ApplicationFailure } from '@temporalio/activity';
import type pg from 'pg';
import { planUndo, type UndoPlan } from '../src/decision/undo';
import { changeRoute, getRoute, listChanges, RoutingConflictError } from '../src/store/routing-state';

export interface UndoInput {
  route: string;
  windowMs: number;
  force: boolean;
  actor: string;
  reason?: string;
}

export interface UndoResult extends UndoPlan {
  route: string;
  /** The routing version the undo produced (every router serves it once it has seen this version). */
  version: number;
}

/** How far back the audit log is searched for the promotion to undo. */
const AUDIT_DEPTH = 200;

export function createUndoActivities(deps: { pool: pg.Pool }) {
  return {
    /**
     * Plans and applies the undo as one compare-and-set on the version it read, with the workflow's id as
     * idempotency key: a retry after a lost reply returns the change it already made.
     */
    async undoPromotion(input: UndoInput & { idempotencyKey: string }): Promise<UndoResult> {
      for (let attempt = 0; ; attempt++) {
        const current = await getRoute(deps.pool, input.route);
        if (!current)
          throw ApplicationFailure.nonRetryable(`route "${input.route}" does not exist`, 'UndoRefused');
        const changes = await listChanges(deps.pool, input.route, AUDIT_DEPTH);
        const done = changes.find((c) => c.idempotencyKey === input.idempotencyKey);
        // A retry after a lost reply: describe the change this undo already made, as it was planned then.
        const decision = done
          ? planUndo(
              done.before!,
              changes.filter((c) => c.id < done.id),
              Date.now(),
              { ...input, force: true },
            )
          : planUndo(current, changes, Date.now(), input);
        if (!decision.ok) throw ApplicationFailure.nonRetryable(decision.reason, 'UndoRefused');
        const { plan } = decision;
        if (done) return { ...plan, route: input.route, version: done.version };
        try {
          const state = await changeRoute(deps.pool, input.route, {
            expectedVersion: current.version,
            requireOwner: null,
            idempotencyKey: input.idempotencyKey,
            patch: { [plan.toSlot]: plan.to, stableSlot: plan.toSlot, canaryBps: 0, shadowRate: 0 },
            actor: input.actor,
            reason:
              `undo of change ${plan.undoes.version} (${plan.undoes.actor}): ${plan.from} -> ${plan.to.target.provider}:${plan.to.target.model}` +
              (input.reason ? `: ${input.reason}` : ''),
          });
          return { ...plan, route: input.route, version: state.version };
        } catch (err) {
          // Someone changed the route between the read and the write: plan again on what it is now.
          if (err instanceof RoutingConflictError && err.kind === 'version' && attempt < 5) continue;
          if (err instanceof RoutingConflictError)
            throw ApplicationFailure.nonRetryable(err.message, 'UndoRefused');
          throw err;
        }
      }
    },
  };
}
