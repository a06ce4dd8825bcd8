import { formatTarget } from './config/target';
import type { RouteState, RoutingChange, SlotConfig, SlotName } from '../store/routing-state';

/**
 * `model-rollout undo`: the route goes back to the model that was stable before its last promotion, which
 * blue-green keeps in the other slot for exactly this. Pure: the activity reads the route and its audit log,
 * this decides, and one compare-and-set applies the result.
 */
export interface UndoRequest {
  /** How long after a promotion it may be undone without `force`. */
  windowMs: number;
  /** Undo even after the window, or when the other slot was since overwritten (its old config comes back). */
  force: boolean;
}

/** 7 days, as Argo Rollouts keeps revisions for `undo` and a team notices a regression within a week. */
export const DEFAULT_UNDO_WINDOW_MS = 7 * 86_400_000;

export interface UndoPlan {
  /** The slot that serves again, with what it serves. */
  toSlot: SlotName;
  to: SlotConfig;
  /** The config the slot held before (null when `force` put the previous config back into it). */
  overwritten: SlotConfig | null;
  from: string;
  /** The change that is undone: the last promotion (a flip of the stable slot by the rollout owning the route). */
  undoes: { id: number; version: number; actor: string; at: string };
}

export type UndoDecision = { ok: true; plan: UndoPlan } | { ok: false; reason: string };

const sameSlot = (a: SlotConfig | null, b: SlotConfig | null): boolean =>
  JSON.stringify(a) === JSON.stringify(b);

const slotOf = (s: Pick<RouteState, 'blue' | 'green'>, slot: SlotName) =>
  slot === 'blue' ? s.blue : s.green;

const describe = (slot: SlotConfig | null) =>
  !slot
    ? 'nothing'
    : slot.fallbacks.length === 0
      ? formatTarget(slot.target)
      : `${formatTarget(slot.target)} (fallbacks ${slot.fallbacks.map(formatTarget).join(', ')})`;

/**
 * `changes` is the route's audit log, newest first. Refuses, with a reason an operator can act on, when a
 * rollout owns the route, when no change ever promoted another slot, when the window has passed, or when
 * the other slot no longer holds what was stable (the last two unless `force`).
 */
export function planUndo(
  current: RouteState,
  changes: readonly RoutingChange[],
  nowMs: number,
  req: UndoRequest,
): UndoDecision {
  if (current.owner)
    return {
      ok: false,
      reason: `rollout ${current.owner} owns route "${current.name}"; roll it back instead of undoing`,
    };
  // A promotion is a flip of the stable slot made by the rollout that owns the route. A rollback (which
  // releases the route as it flips), a guardian's switch or an undo is not one: undoing those would bring
  // back a model that was taken away for a reason.
  const flips = changes.filter((c) => c.before !== null && c.before.stableSlot !== c.after.stableSlot);
  const flip = flips.find((c) => c.after.owner !== null && c.after.owner === c.before!.owner);
  if (!flip || !flip.before)
    return { ok: false, reason: `route "${current.name}" has no promotion to undo in its audit log` };
  const undoes = {
    id: flip.id,
    version: flip.version,
    actor: flip.actor,
    at: flip.createdAt.toISOString(),
  };
  const toSlot = flip.before.stableSlot;
  const previous = slotOf(flip.before, toSlot);
  if (!previous)
    return {
      ok: false,
      reason: `the ${toSlot} slot was empty before change ${flip.version}: nothing to return to`,
    };
  if (current.stableSlot === toSlot) {
    const since = flips.find((c) => c.id > flip.id && c.after.stableSlot === toSlot);
    return {
      ok: false,
      reason:
        `${describe(slotOf(current, toSlot))} serves again since change ${since?.version ?? '?'} ` +
        `(${since?.actor ?? 'unknown'}: ${since?.reason ?? 'no reason'}); nothing to undo`,
    };
  }

  const ageMs = nowMs - flip.createdAt.getTime();
  if (ageMs > req.windowMs && !req.force)
    return {
      ok: false,
      reason:
        `the promotion to ${describe(slotOf(flip.after, flip.after.stableSlot))} (change ${flip.version} by ${flip.actor}, ` +
        `${undoes.at}) is ${formatAge(ageMs)} old, past the ${formatAge(req.windowMs)} undo window; --force undoes it anyway`,
    };

  const now = slotOf(current, toSlot);
  if (!sameSlot(now, previous) && !req.force) {
    const held =
      describe(now) === describe(previous) ? `${describe(now)} with other parameters` : describe(now);
    return {
      ok: false,
      reason:
        `the ${toSlot} slot no longer holds ${describe(previous)} (it holds ${held} since a later change); ` +
        `--force puts ${describe(previous)} back into it and serves it`,
    };
  }

  return {
    ok: true,
    plan: {
      toSlot,
      to: previous,
      overwritten: sameSlot(now, previous) ? null : now,
      from: describe(slotOf(current, current.stableSlot)),
      undoes,
    },
  };
}

export function formatAge(ms: number): string {
  const units: Array<[number, string]> = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'm'],
    [1000, 's'],
  ];
  for (const [size, unit] of units) if (ms >= size) return `${Math.floor(ms / size)}${unit}`;
  return `${Math.max(0, Math.round(ms))}ms`;
}
