/**
 * Shared routing state: one row per route in Postgres, changed only by compare-and-set on its version.
 *
 * Every change goes through {@link changeRoute}: in ONE transaction it locks the row, checks that the
 * caller's `expectedVersion` is still the current version (and, optionally, that the caller owns the
 * route), writes the new state with `version + 1`, appends an audit row to `routing_changes` with the
 * before/after snapshots, and calls `pg_notify('model_rollout_routes', '<name>:<version>')`. Postgres
 * delivers a notification only when its transaction commits, so routers never hear of a change that was
 * rolled back, and they re-read the row on notification (the payload is only a hint).
 *
 * Why a late retry cannot undo a rollback: a rollout activity "set canary to 20%" is created with the
 * version it read (say 7). If the workflow, or an operator, rolls back meanwhile, the version becomes 8.
 * When the late retry of the 20% step arrives with `expectedVersion: 7`, the compare-and-set fails with
 * {@link RoutingConflictError} and the state stays rolled back: there is no code path that writes without
 * a version check. A caller that gets a conflict must re-read the state and decide again; it must never
 * retry blindly with the new version.
 *
 * Retries of the SAME change (the activity's first attempt committed, but the reply was lost) are told
 * apart from conflicting ones by `idempotencyKey` (e.g. `<workflow id>:<step>`): when a change with that
 * key is already in the audit log, changeRoute returns the state that change produced instead of a
 * conflict, whatever happened since. So an activity is safe to retry with the same arguments.
 */
import crypto from 'node:crypto';
import type pg from 'pg';
import type { Target } from '../data-plane/providers/types';

export const ROUTES_CHANNEL = 'model_rollout_routes';

export type SlotName = 'blue' | 'green';

/** One slot of a route: the target and its ordered fallbacks ("TargetChain"). */
export interface SlotConfig {
  target: Target;
  fallbacks: Target[];
}

export interface RouteState {
  name: string;
  blue: SlotConfig;
  /** The second slot; null until a candidate is assigned. */
  green: SlotConfig | null;
  stableSlot: SlotName;
  /** Share of routing keys sent to the candidate, in basis points (0..10000). */
  canaryBps: number;
  /** Fraction (0..1) of stable requests also sent to the candidate as shadows. */
  shadowRate: number;
  /** Canary assignment salt (a new salt per rollout reshuffles who is in the canary). */
  salt: string;
  /** Grows by one with every change; the compare-and-set token. */
  version: number;
  /** The rollout (workflow id) that owns the route, if any. */
  owner: string | null;
  updatedAt: Date;
}

export interface RoutePatch {
  blue?: SlotConfig;
  green?: SlotConfig | null;
  stableSlot?: SlotName;
  canaryBps?: number;
  shadowRate?: number;
  salt?: string;
  owner?: string | null;
}

export interface CreateRouteInput extends RoutePatch {
  name: string;
  blue: SlotConfig;
}

export interface ChangeContext {
  /** Who makes the change: a workflow id, `cli:<user>`, ... */
  actor: string;
  /** Why, in words that belong in an audit log. */
  reason: string;
}

export interface ChangeRouteInput extends ChangeContext {
  /** The version the caller read; the change applies only if it is still current. */
  expectedVersion: number;
  patch: RoutePatch;
  /**
   * Owner fence. Omitted: no owner check. A string: the route's owner must be exactly that (a rollout
   * may only change the route it owns). `null`: the route must have no owner (take-over guard).
   */
  requireOwner?: string | null;
  /**
   * Makes the call safe to retry: if a change with this key was already applied to this route, the
   * state that change produced is returned (and nothing is written). Use `<workflow id>:<step>`.
   */
  idempotencyKey?: string;
}

export interface RoutingChange {
  id: number;
  route: string;
  /** The version this change produced. */
  version: number;
  actor: string;
  reason: string;
  before: RouteState | null;
  after: RouteState;
  idempotencyKey: string | null;
  createdAt: Date;
}

// ---------------------------------------------------------------------------------------------------------
// Errors

export class RoutingValidationError extends Error {
  override readonly name = 'RoutingValidationError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`invalid ${field}: ${message}`);
  }
}

export class RouteNotFoundError extends Error {
  override readonly name = 'RouteNotFoundError';
  constructor(readonly route: string) {
    super(`route "${route}" does not exist`);
  }
}

export class RouteExistsError extends Error {
  override readonly name = 'RouteExistsError';
  constructor(readonly route: string) {
    super(`route "${route}" already exists; change it with changeRoute (compare-and-set) instead`);
  }
}

/** A compare-and-set that lost: the route changed since the caller read it, or it is owned by someone else. */
export class RoutingConflictError extends Error {
  override readonly name = 'RoutingConflictError';
  readonly route: string;
  /** 'version': the route changed since it was read. 'owner': the owner fence refused the change. */
  readonly kind: 'version' | 'owner';
  readonly expectedVersion: number;
  readonly actualVersion: number;
  /** The route's current owner. */
  readonly owner: string | null;
  /** The owner the caller required, when it did. */
  readonly requiredOwner: string | null | undefined;
  constructor(args: {
    route: string;
    kind: 'version' | 'owner';
    expectedVersion: number;
    actualVersion: number;
    owner: string | null;
    requiredOwner?: string | null;
  }) {
    super(
      args.kind === 'version'
        ? `routing conflict on "${args.route}": expected version ${args.expectedVersion}, but it is at ${args.actualVersion} (owner ${args.owner ?? 'none'}); re-read and decide again`
        : `routing conflict on "${args.route}": owned by ${args.owner ?? 'nobody'}, change requires owner ${args.requiredOwner ?? 'none'} (version ${args.actualVersion})`,
    );
    this.route = args.route;
    this.kind = args.kind;
    this.expectedVersion = args.expectedVersion;
    this.actualVersion = args.actualVersion;
    this.owner = args.owner;
    this.requiredOwner = args.requiredOwner;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Pure helpers

export function slotOf(state: Pick<RouteState, 'blue' | 'green'>, slot: SlotName): SlotConfig | null {
  return slot === 'blue' ? state.blue : state.green;
}

export function candidateSlotOf(state: Pick<RouteState, 'stableSlot'>): SlotName {
  return state.stableSlot === 'blue' ? 'green' : 'blue';
}

/** The stable slot's configuration (always present: validation guarantees it). */
export function stableOf(state: RouteState): SlotConfig {
  return slotOf(state, state.stableSlot)!;
}

/** The candidate (the other slot), or null when the route has a single slot. */
export function candidateOf(state: RouteState): SlotConfig | null {
  return slotOf(state, candidateSlotOf(state));
}

/** Parses a `model_rollout_routes` payload `<name>:<version>` (route names may contain ':'). */
export function parseRouteNotification(
  payload: string | undefined,
): { name: string; version: number } | null {
  if (!payload) return null;
  const i = payload.lastIndexOf(':');
  if (i <= 0) return null;
  const version = Number(payload.slice(i + 1));
  if (!Number.isSafeInteger(version)) return null;
  return { name: payload.slice(0, i), version };
}

const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function validateTarget(field: string, t: unknown): Target {
  if (!isObject(t)) throw new RoutingValidationError(field, 'must be an object { provider, model, params? }');
  if (typeof t.provider !== 'string' || t.provider.trim() === '')
    throw new RoutingValidationError(`${field}.provider`, 'must be a non-empty string');
  if (typeof t.model !== 'string' || t.model.trim() === '')
    throw new RoutingValidationError(`${field}.model`, 'must be a non-empty string');
  if (t.params !== undefined && !isObject(t.params))
    throw new RoutingValidationError(`${field}.params`, 'must be an object');
  if (t.baseUrl !== undefined && typeof t.baseUrl !== 'string')
    throw new RoutingValidationError(`${field}.baseUrl`, 'must be a string');
  if (t.contextFallback !== undefined && typeof t.contextFallback !== 'boolean')
    throw new RoutingValidationError(`${field}.contextFallback`, 'must be true or false');
  return t as unknown as Target;
}

/** Validates a slot configuration and normalizes it to exactly `{ target, fallbacks }`. */
export function validateSlotConfig(field: string, value: unknown): SlotConfig {
  if (!isObject(value)) throw new RoutingValidationError(field, 'must be an object { target, fallbacks }');
  const target = validateTarget(`${field}.target`, value.target);
  const fallbacksRaw = value.fallbacks ?? [];
  if (!Array.isArray(fallbacksRaw))
    throw new RoutingValidationError(`${field}.fallbacks`, 'must be an array');
  const fallbacks = fallbacksRaw.map((f, i) => validateTarget(`${field}.fallbacks[${i}]`, f));
  return { target, fallbacks };
}

type StateValues = Omit<RouteState, 'name' | 'version' | 'updatedAt'>;

/** Validates a whole state (after a patch is merged); throws RoutingValidationError naming the field. */
export function validateStateValues(v: StateValues): StateValues {
  const blue = validateSlotConfig('blue', v.blue);
  const green = v.green === null ? null : validateSlotConfig('green', v.green);
  if (v.stableSlot !== 'blue' && v.stableSlot !== 'green')
    throw new RoutingValidationError(
      'stableSlot',
      `must be "blue" or "green", got ${JSON.stringify(v.stableSlot)}`,
    );
  if (
    typeof v.canaryBps !== 'number' ||
    !Number.isInteger(v.canaryBps) ||
    v.canaryBps < 0 ||
    v.canaryBps > 10000
  )
    throw new RoutingValidationError(
      'canaryBps',
      `must be an integer from 0 to 10000 (basis points), got ${v.canaryBps}`,
    );
  if (
    typeof v.shadowRate !== 'number' ||
    !Number.isFinite(v.shadowRate) ||
    v.shadowRate < 0 ||
    v.shadowRate > 1
  )
    throw new RoutingValidationError('shadowRate', `must be a number from 0 to 1, got ${v.shadowRate}`);
  if (typeof v.salt !== 'string' || v.salt.length > 200)
    throw new RoutingValidationError('salt', 'must be a string of at most 200 characters');
  if (v.owner !== null && (typeof v.owner !== 'string' || v.owner === ''))
    throw new RoutingValidationError('owner', 'must be a non-empty string or null');
  if (green === null) {
    if (v.stableSlot === 'green')
      throw new RoutingValidationError('green', 'is required when stableSlot is "green"');
    if (v.canaryBps > 0)
      throw new RoutingValidationError(
        'green',
        'is required when canaryBps > 0 (no candidate to send the canary to)',
      );
    if (v.shadowRate > 0)
      throw new RoutingValidationError('green', 'is required when shadowRate > 0 (no candidate to shadow)');
  }
  return { ...v, blue, green };
}

function validateContext(ctx: ChangeContext): void {
  if (typeof ctx.actor !== 'string' || ctx.actor.trim() === '')
    throw new RoutingValidationError('actor', 'must be a non-empty string');
  if (typeof ctx.reason !== 'string' || ctx.reason.trim() === '')
    throw new RoutingValidationError('reason', 'must be a non-empty string');
}

function applyPatch(base: StateValues, patch: RoutePatch): StateValues {
  const next: StateValues = { ...base };
  const keys: (keyof RoutePatch)[] = [
    'blue',
    'green',
    'stableSlot',
    'canaryBps',
    'shadowRate',
    'salt',
    'owner',
  ];
  for (const k of Object.keys(patch)) {
    if (!keys.includes(k as keyof RoutePatch))
      throw new RoutingValidationError(k, 'is not a field of a route that can be changed');
  }
  for (const k of keys) {
    const value = patch[k];
    if (value !== undefined) (next as Record<string, unknown>)[k] = value;
  }
  return next;
}

// ---------------------------------------------------------------------------------------------------------
// Row mapping

interface RouteRow {
  name: string;
  blue: SlotConfig;
  green: SlotConfig | null;
  stable_slot: SlotName;
  canary_bps: number;
  shadow_rate: number;
  salt: string;
  version: string | number;
  owner: string | null;
  updated_at: Date;
}

const ROUTE_COLUMNS =
  'name, blue, green, stable_slot, canary_bps, shadow_rate, salt, version, owner, updated_at';

export function rowToRouteState(row: RouteRow): RouteState {
  return {
    name: row.name,
    blue: row.blue,
    green: row.green,
    stableSlot: row.stable_slot,
    canaryBps: Number(row.canary_bps),
    shadowRate: Number(row.shadow_rate),
    salt: row.salt,
    version: Number(row.version),
    owner: row.owner,
    updatedAt: row.updated_at instanceof Date ? row.updated_at : new Date(row.updated_at),
  };
}

function snapshot(state: RouteState): Record<string, unknown> {
  return { ...state, updatedAt: state.updatedAt.toISOString() };
}

function fromSnapshot(raw: unknown): RouteState {
  const s = raw as RouteState & { updatedAt: string };
  return { ...s, updatedAt: new Date(s.updatedAt) };
}

// ---------------------------------------------------------------------------------------------------------
// Queries

/**
 * `timeoutMs`: the client gives up on an answer after this long (a pooled connection that timed out is
 * dropped, not lent out again), so a reader behind a blackholing network learns of it in bounded time.
 */
export interface ReadOptions {
  timeoutMs?: number;
}

/** pg honours `query_timeout` per query; its types only know it on the client's config. */
const timed = (text: string, values: unknown[], timeoutMs: number | undefined): pg.QueryConfig =>
  ({ text, values, query_timeout: timeoutMs }) as pg.QueryConfig;

export async function getRoute(
  pool: pg.Pool | pg.PoolClient,
  name: string,
  options: ReadOptions = {},
): Promise<RouteState | undefined> {
  const { rows } = await pool.query<RouteRow>(
    timed(`SELECT ${ROUTE_COLUMNS} FROM routes WHERE name = $1`, [name], options.timeoutMs),
  );
  return rows[0] ? rowToRouteState(rows[0]) : undefined;
}

export async function listRoutes(
  pool: pg.Pool | pg.PoolClient,
  options: ReadOptions = {},
): Promise<RouteState[]> {
  const { rows } = await pool.query<RouteRow>(
    timed(`SELECT ${ROUTE_COLUMNS} FROM routes ORDER BY name`, [], options.timeoutMs),
  );
  return rows.map(rowToRouteState);
}

/** The audit log of a route, newest first. */
export async function listChanges(
  pool: pg.Pool | pg.PoolClient,
  name: string,
  limit = 50,
): Promise<RoutingChange[]> {
  const { rows } = await pool.query(
    `SELECT id, route, version, actor, reason, before, after, idempotency_key, created_at
       FROM routing_changes WHERE route = $1 ORDER BY id DESC LIMIT $2`,
    [name, limit],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    route: r.route,
    version: Number(r.version),
    actor: r.actor,
    reason: r.reason,
    before: r.before ? fromSnapshot(r.before) : null,
    after: fromSnapshot(r.after),
    idempotencyKey: r.idempotency_key ?? null,
    createdAt: r.created_at,
  }));
}

async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch {
      broken = true; // the connection is gone: do not return it to the pool
    }
    throw err;
  } finally {
    client.release(broken);
  }
}

/** blue, green, stable_slot, canary_bps, shadow_rate, salt, owner: in the order both writes list them. */
function stateColumns(values: StateValues): unknown[] {
  return [
    JSON.stringify(values.blue),
    values.green === null ? null : JSON.stringify(values.green),
    values.stableSlot,
    values.canaryBps,
    values.shadowRate,
    values.salt,
    values.owner,
  ];
}

async function notifyChange(client: pg.PoolClient, name: string, version: number): Promise<void> {
  // Delivered by Postgres only if (and when) the surrounding transaction commits.
  await client.query('SELECT pg_notify($1, $2)', [ROUTES_CHANNEL, `${name}:${version}`]);
}

/**
 * Creates a route at version 1. Refuses an existing name with {@link RouteExistsError} (never overwrites).
 * `salt` defaults to a random one.
 */
export async function createRoute(
  pool: pg.Pool,
  input: CreateRouteInput,
  ctx: ChangeContext,
): Promise<RouteState> {
  validateContext(ctx);
  if (typeof input.name !== 'string' || !ROUTE_NAME.test(input.name))
    throw new RoutingValidationError('name', `must match ${ROUTE_NAME} (got ${JSON.stringify(input.name)})`);
  const values = validateStateValues(
    applyPatch(
      {
        blue: input.blue,
        green: null,
        stableSlot: 'blue',
        canaryBps: 0,
        shadowRate: 0,
        salt: crypto.randomBytes(8).toString('hex'),
        owner: null,
      },
      Object.fromEntries(Object.entries(input).filter(([k]) => k !== 'name')) as RoutePatch,
    ),
  );
  return inTransaction(pool, async (client) => {
    const { rows } = await client.query<RouteRow>(
      `INSERT INTO routes (name, blue, green, stable_slot, canary_bps, shadow_rate, salt, version, owner, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, now())
       ON CONFLICT (name) DO NOTHING
       RETURNING ${ROUTE_COLUMNS}`,
      [input.name, ...stateColumns(values)],
    );
    if (!rows[0]) throw new RouteExistsError(input.name);
    const state = rowToRouteState(rows[0]);
    await client.query(
      `INSERT INTO routing_changes (route, version, actor, reason, before, after) VALUES ($1, $2, $3, $4, NULL, $5)`,
      [state.name, state.version, ctx.actor, ctx.reason, JSON.stringify(snapshot(state))],
    );
    await notifyChange(client, state.name, state.version);
    return state;
  });
}

/**
 * THE way to change a route: compare-and-set on `expectedVersion` (plus the optional owner fence), in one
 * transaction with its audit row and its notification. Returns the new state (version + 1).
 *
 * Throws {@link RoutingConflictError} when the version moved or the owner fence refuses (nothing is
 * written), {@link RouteNotFoundError} for an unknown route, {@link RoutingValidationError} for a patch
 * that would make the route invalid (the error names the field).
 */
export async function changeRoute(pool: pg.Pool, name: string, input: ChangeRouteInput): Promise<RouteState> {
  validateContext(input);
  if (!Number.isSafeInteger(input.expectedVersion) || input.expectedVersion < 1)
    throw new RoutingValidationError(
      'expectedVersion',
      `must be a positive integer, got ${input.expectedVersion}`,
    );
  if (!isObject(input.patch)) throw new RoutingValidationError('patch', 'must be an object');
  if (
    input.idempotencyKey !== undefined &&
    (typeof input.idempotencyKey !== 'string' || input.idempotencyKey === '')
  )
    throw new RoutingValidationError('idempotencyKey', 'must be a non-empty string');

  return inTransaction(pool, async (client) => {
    // The row lock serializes concurrent writers: the second one waits, then reads the winner's version.
    const { rows } = await client.query<RouteRow>(
      `SELECT ${ROUTE_COLUMNS} FROM routes WHERE name = $1 FOR UPDATE`,
      [name],
    );
    if (!rows[0]) throw new RouteNotFoundError(name);
    const before = rowToRouteState(rows[0]);

    if (input.idempotencyKey !== undefined) {
      const done = await client.query(
        `SELECT after FROM routing_changes WHERE route = $1 AND idempotency_key = $2`,
        [name, input.idempotencyKey],
      );
      if (done.rows[0]) return fromSnapshot(done.rows[0].after);
    }

    if (before.version !== input.expectedVersion) {
      throw new RoutingConflictError({
        route: name,
        kind: 'version',
        expectedVersion: input.expectedVersion,
        actualVersion: before.version,
        owner: before.owner,
        requiredOwner: input.requireOwner,
      });
    }
    if (input.requireOwner !== undefined && before.owner !== input.requireOwner) {
      throw new RoutingConflictError({
        route: name,
        kind: 'owner',
        expectedVersion: input.expectedVersion,
        actualVersion: before.version,
        owner: before.owner,
        requiredOwner: input.requireOwner,
      });
    }

    const values = validateStateValues(applyPatch(before, input.patch));
    const updated = await client.query<RouteRow>(
      `UPDATE routes
          SET blue = $3, green = $4, stable_slot = $5, canary_bps = $6, shadow_rate = $7, salt = $8, owner = $9,
              version = version + 1, updated_at = now()
        WHERE name = $1 AND version = $2
        RETURNING ${ROUTE_COLUMNS}`,
      [name, input.expectedVersion, ...stateColumns(values)],
    );
    if (!updated.rows[0]) {
      // Unreachable while the row lock is held; kept so that a broken invariant is a conflict, not a write.
      const now = await getRoute(client, name);
      throw new RoutingConflictError({
        route: name,
        kind: 'version',
        expectedVersion: input.expectedVersion,
        actualVersion: now?.version ?? -1,
        owner: now?.owner ?? null,
      });
    }
    const after = rowToRouteState(updated.rows[0]);
    await client.query(
      `INSERT INTO routing_changes (route, version, actor, reason, before, after, idempotency_key)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [
        name,
        after.version,
        input.actor,
        input.reason,
        JSON.stringify(snapshot(before)),
        JSON.stringify(snapshot(after)),
        input.idempotencyKey ?? null,
      ],
    );
    await notifyChange(client, name, after.version);
    return after;
  });
}
