/**
 * The router's in-memory copy of the routing state.
 *
 * - `get(name)` is a synchronous Map lookup: the hot path never waits for Postgres.
 * - Changes arrive by LISTEN/NOTIFY on `model_rollout_routes` (payload `<name>:<version>`, sent by
 *   changeRoute inside its transaction): a dedicated `pg.Client` listens, and each notification re-reads
 *   that one route (versions not newer than the cached one are ignored).
 * - A poll of all routes every `pollIntervalMs` is the safety net (missed notifications, routes deleted by
 *   hand, a listener that is reconnecting).
 * - On connection loss the cache keeps serving the last state it had, reports itself degraded in
 *   `health()`, and reconnects the listener with exponential backoff; after a reconnect it reloads
 *   everything, since notifications sent while it was away are lost.
 * - Staleness is the time since the state was last CONFIRMED current: a full read that worked, or a
 *   liveness ping answered by the listener (while it listens and no change was missed since the last full
 *   read: changes then arrive as they commit). Behind a network that blackholes, nothing errors: every read
 *   has a deadline (`readTimeoutMs`) and the listener is pinged on a timer of its own
 *   (`livenessIntervalMs`, `pingTimeoutMs`) so a silent dead connection is found and replaced, and
 *   staleness grows until Postgres answers again.
 * - No Postgres error ever escapes as an unhandled rejection or an unhandled 'error' event.
 */
import pg from 'pg';
import { logger as rootLogger, type Logger } from '../../logger';
import type { Database } from '../../store/database';
import {
  ROUTES_CHANNEL,
  getRoute,
  listRoutes,
  parseRouteNotification,
  type RouteState,
} from '../../store/routing-state';

export type NotifyStatus = 'listening' | 'off' | 'reconnecting';

export interface RoutingCacheHealth {
  /** True when the state is known to be current: not stale, the last read worked and, with notify, the listener is up. */
  ok: boolean;
  /** Staleness past `staleAfterMs`: the cache still serves, from state it cannot confirm. */
  stale: boolean;
  /** Last successful full read of all routes. */
  lastRefreshAt: Date | null;
  /** Last time the state was confirmed current (a full read, or a liveness ping of a listener that missed nothing). */
  lastConfirmedAt: Date | null;
  /** Milliseconds since `lastConfirmedAt` (Infinity before the first read). */
  stalenessMs: number;
  notify: NotifyStatus;
  lastError?: string;
  routes: number;
}

export interface RoutingCacheOptions {
  /** Takes pool and connection string from an opened database. */
  database?: Database;
  /** Pool for reads (not ended by close() unless the cache created it). */
  pool?: pg.Pool;
  /** Connection string: for the LISTEN client, and for a pool when none is given. */
  connectionString?: string;
  /** Use LISTEN/NOTIFY (default true; false leaves polling alone, to test the safety net). */
  notify?: boolean;
  /** Full reload period, the safety net (default 1000 ms). */
  pollIntervalMs?: number;
  /** Listener reconnect backoff (default 100 ms doubling to 5000 ms, with jitter). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** A listener connection that does not answer a liveness ping within this is replaced (default 5000 ms). */
  pingTimeoutMs?: number;
  /** How often the listener is pinged, independently of the poll (default 1000 ms). */
  livenessIntervalMs?: number;
  /** A read of the routing state that has no answer after this long fails (default 5000 ms). */
  readTimeoutMs?: number;
  /** Staleness past which `health()` says stale (default 5000 ms, or 3 poll intervals when longer and notify is off). */
  staleAfterMs?: number;
  /** When the first load fails: throw from createRoutingCache (default) or start empty and degraded. */
  failOnInitialLoad?: boolean;
  /** Called after a route's cached state changed (previous undefined for a new route; next undefined when deleted). */
  onChange?: (next: RouteState | undefined, previous: RouteState | undefined) => void;
  logger?: Logger;
}

export class RoutingCache {
  private readonly routes = new Map<string, RouteState>();
  private readonly pool: pg.Pool;
  private readonly ownsPool: boolean;
  private readonly connectionString: string | undefined;
  private readonly notifyEnabled: boolean;
  private readonly pollIntervalMs: number;
  private readonly reconnectMinMs: number;
  private readonly reconnectMaxMs: number;
  private readonly pingTimeoutMs: number;
  private readonly livenessIntervalMs: number;
  private readonly readTimeoutMs: number;
  private readonly staleAfterMs: number;
  private readonly log: Logger;
  private readonly listeners = new Set<
    (next: RouteState | undefined, previous: RouteState | undefined) => void
  >();

  private listenClient: pg.Client | null = null;
  private notifyStatus: NotifyStatus;
  private reconnectAttempt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private livenessTimer: NodeJS.Timeout | null = null;
  private pinging = false;
  private closed = false;
  private lastRefreshAt: Date | null = null;
  private lastConfirmedAt: Date | null = null;
  /** When a notified change could not be read (0: none): only a full read begun after it confirms again. */
  private missedChangeAt = 0;
  private lastReadOk = false;
  private lastError: string | undefined;
  private readonly pendingReads = new Map<string, Promise<void>>();
  private polling: Promise<void> | null = null;
  private readonly loggedErrors = new Map<string, number>();
  /** Incremented on every applied change; `appliedAt` remembers it per route (see reloadAll's delete rule). */
  private applySeq = 0;
  private readonly appliedAt = new Map<string, number>();

  constructor(options: RoutingCacheOptions) {
    const db = options.database;
    this.connectionString =
      options.connectionString ??
      (db ? rawConnectionString(db) : undefined) ??
      poolConnectionString(options.pool);
    if (options.pool ?? db?.pool) {
      this.pool = (options.pool ?? db?.pool)!;
      this.ownsPool = false;
    } else if (this.connectionString) {
      this.pool = new pg.Pool({
        connectionString: this.connectionString,
        max: 2,
        connectionTimeoutMillis: 5000,
      });
      this.pool.on('error', (err) => this.noteError('pool', err));
      this.ownsPool = true;
    } else {
      throw new Error('RoutingCache needs a database, a pool or a connectionString');
    }
    const wantNotify = options.notify ?? true;
    this.notifyEnabled = wantNotify && this.connectionString !== undefined;
    this.notifyStatus = this.notifyEnabled ? 'reconnecting' : 'off';
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.reconnectMinMs = options.reconnectMinMs ?? 100;
    this.reconnectMaxMs = options.reconnectMaxMs ?? 5000;
    this.pingTimeoutMs = options.pingTimeoutMs ?? 5000;
    this.livenessIntervalMs = options.livenessIntervalMs ?? 1000;
    this.readTimeoutMs = options.readTimeoutMs ?? 5000;
    this.staleAfterMs =
      options.staleAfterMs ?? Math.max(5000, this.notifyEnabled ? 0 : 3 * this.pollIntervalMs);
    this.log = (options.logger ?? rootLogger).child({ component: 'routing-cache' });
    if (options.onChange) this.listeners.add(options.onChange);
    if (wantNotify && !this.notifyEnabled) {
      this.log.warn('routing cache: no connection string for the LISTEN client; relying on polling only');
    }
  }

  /** Loads all routes, starts listening (when enabled) and polling. */
  async start(failOnInitialLoad = true): Promise<void> {
    const loaded = await this.reloadAll();
    if (!loaded && failOnInitialLoad) {
      const message = this.lastError;
      await this.close();
      throw new Error(`routing cache: initial load failed: ${message}`);
    }
    if (this.notifyEnabled) {
      await this.connectListener();
      this.livenessTimer = setInterval(() => void this.pingListener(), this.livenessIntervalMs);
      this.livenessTimer.unref();
    }
    this.schedulePoll();
  }

  // ------------------------------------------------------------------ hot path

  /** The cached state of a route (synchronous; never touches Postgres). */
  get(name: string): RouteState | undefined {
    return this.routes.get(name);
  }

  all(): RouteState[] {
    return [...this.routes.values()];
  }

  /** Subscribes to cached state changes; returns the unsubscribe function. */
  subscribe(listener: (next: RouteState | undefined, previous: RouteState | undefined) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  health(): RoutingCacheHealth {
    const listening = this.notifyStatus === 'listening';
    const stalenessMs = this.lastConfirmedAt
      ? Math.max(0, Date.now() - this.lastConfirmedAt.getTime())
      : Number.POSITIVE_INFINITY;
    const stale = stalenessMs > this.staleAfterMs;
    const h: RoutingCacheHealth = {
      ok: !stale && !this.closed && this.lastReadOk && (!this.notifyEnabled || listening),
      stale,
      lastRefreshAt: this.lastRefreshAt,
      lastConfirmedAt: this.lastConfirmedAt,
      stalenessMs,
      notify: this.notifyStatus,
      routes: this.routes.size,
    };
    if (this.lastError !== undefined) h.lastError = this.lastError;
    return h;
  }

  /** Reloads every route now (also what the poll does). Resolves false when the read failed. */
  async refresh(): Promise<boolean> {
    return this.reloadAll();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.livenessTimer) clearInterval(this.livenessTimer);
    this.pollTimer = this.reconnectTimer = this.livenessTimer = null;
    const client = this.listenClient;
    this.listenClient = null;
    if (this.notifyEnabled) this.notifyStatus = 'off';
    if (client) await client.end().catch(() => {});
    await Promise.allSettled([this.polling, ...this.pendingReads.values()]);
    if (this.ownsPool) await this.pool.end().catch(() => {});
  }

  // ------------------------------------------------------------------ reading

  private apply(next: RouteState): void {
    const prev = this.routes.get(next.name);
    // Versions only grow: an older read finishing late (a poll racing a notification) never wins.
    if (prev && next.version <= prev.version) return;
    this.routes.set(next.name, next);
    this.appliedAt.set(next.name, ++this.applySeq);
    this.emit(next, prev);
  }

  private emit(next: RouteState | undefined, prev: RouteState | undefined): void {
    for (const listener of this.listeners) {
      try {
        listener(next, prev);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'routing cache onChange listener threw');
      }
    }
  }

  private async reloadAll(): Promise<boolean> {
    if (this.polling) {
      await this.polling;
      return this.lastReadOk;
    }
    const run = (async () => {
      try {
        const seqAtStart = this.applySeq;
        // What a read shows is as old as its start (the answer may take up to readTimeoutMs).
        const startedAt = new Date();
        const states = await listRoutes(this.pool, { timeoutMs: this.readTimeoutMs });
        if (this.closed) return;
        const seen = new Set<string>();
        for (const s of states) {
          seen.add(s.name);
          this.apply(s);
        }
        for (const [name, prev] of this.routes) {
          // Deleted in Postgres (by hand: the API never deletes), unless a notification brought it in after
          // this read started (then the read simply predates it).
          if (!seen.has(name) && (this.appliedAt.get(name) ?? 0) <= seqAtStart) {
            this.routes.delete(name);
            this.appliedAt.delete(name);
            this.emit(undefined, prev);
          }
        }
        this.lastRefreshAt = new Date();
        if (!this.lastConfirmedAt || startedAt > this.lastConfirmedAt) this.lastConfirmedAt = startedAt;
        this.lastReadOk = true;
        if (this.missedChangeAt <= startedAt.getTime()) this.missedChangeAt = 0;
        if (this.notifyStatus !== 'reconnecting') this.lastError = undefined;
      } catch (err) {
        this.lastReadOk = false;
        this.noteError('reload', err);
      }
    })();
    this.polling = run;
    try {
      await run;
    } finally {
      this.polling = null;
    }
    return this.lastReadOk;
  }

  private readOne(name: string, version: number): void {
    const cached = this.routes.get(name);
    if (cached && cached.version >= version) return;
    if (this.pendingReads.has(name)) {
      // A read is in flight; chain one more so that a version committed after it started is not missed.
      const chained = this.pendingReads.get(name)!.then(() => this.readOneNow(name, version));
      this.pendingReads.set(name, chained);
      void chained.finally(() => {
        if (this.pendingReads.get(name) === chained) this.pendingReads.delete(name);
      });
      return;
    }
    const p = this.readOneNow(name, version);
    this.pendingReads.set(name, p);
    void p.finally(() => {
      if (this.pendingReads.get(name) === p) this.pendingReads.delete(name);
    });
  }

  private async readOneNow(name: string, version: number): Promise<void> {
    if (this.closed) return;
    const cached = this.routes.get(name);
    if (cached && cached.version >= version) return;
    try {
      const state = await getRoute(this.pool, name, { timeoutMs: this.readTimeoutMs });
      if (state && !this.closed) this.apply(state);
    } catch (err) {
      // The poll will pick the change up; until then the state is not confirmed.
      this.missedChangeAt = Date.now();
      this.noteError('read', err);
    }
  }

  private schedulePoll(): void {
    if (this.closed) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = null;
      void this.pollOnce().finally(() => this.schedulePoll());
    }, this.pollIntervalMs);
    this.pollTimer.unref();
  }

  private async pollOnce(): Promise<void> {
    await this.reloadAll();
  }

  // ------------------------------------------------------------------ listening

  private async connectListener(): Promise<void> {
    if (this.closed || !this.connectionString) return;
    this.notifyStatus = 'reconnecting';
    const client = new pg.Client({
      connectionString: this.connectionString,
      keepAlive: true,
      connectionTimeoutMillis: 5000,
    });
    this.listenClient = client;
    client.on('error', (err) => this.onListenerLost(client, err));
    client.on('end', () => this.onListenerLost(client, new Error('listener connection ended')));
    client.on('notification', (msg) => {
      if (msg.channel !== ROUTES_CHANNEL) return;
      const parsed = parseRouteNotification(msg.payload);
      if (parsed) this.readOne(parsed.name, parsed.version);
      else void this.reloadAll();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${ROUTES_CHANNEL}`);
    } catch (err) {
      this.onListenerLost(client, err);
      return;
    }
    if (this.closed || this.listenClient !== client) {
      await client.end().catch(() => {});
      return;
    }
    const wasReconnect = this.reconnectAttempt > 0;
    this.reconnectAttempt = 0;
    this.notifyStatus = 'listening';
    this.lastError = undefined;
    if (wasReconnect) {
      this.log.info('routing cache listener reconnected');
      // Notifications sent while we were away are lost: catch up.
      await this.reloadAll();
    }
  }

  private onListenerLost(client: pg.Client, err: unknown): void {
    if (this.listenClient !== client) return; // an old client's late event
    this.listenClient = null;
    client.removeAllListeners('notification');
    client.end().catch(() => {});
    if (this.closed) return;
    this.notifyStatus = 'reconnecting';
    this.noteError('listen', err);
    const delay = Math.min(this.reconnectMaxMs, this.reconnectMinMs * 2 ** this.reconnectAttempt);
    this.reconnectAttempt++;
    const jittered = delay / 2 + Math.random() * (delay / 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connectListener();
    }, jittered);
    this.reconnectTimer.unref();
  }

  /**
   * A half-open TCP connection stays silent: a ping with a deadline finds it. Runs on its own timer, so a
   * poll waiting on a blackholed pool cannot delay it. An answer confirms the cached state current when
   * nothing was missed (notifications reach a live session as changes commit).
   */
  private async pingListener(): Promise<void> {
    const client = this.listenClient;
    if (!client || this.pinging || this.notifyStatus !== 'listening') return;
    this.pinging = true;
    const sentAt = new Date();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.query('SELECT 1'),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`listener ping timed out after ${this.pingTimeoutMs} ms`)),
            this.pingTimeoutMs,
          );
        }),
      ]);
      // Notifications precede the answer on the connection; a change still being read is not confirmed.
      const confirmed =
        this.listenClient === client &&
        this.lastReadOk &&
        this.missedChangeAt === 0 &&
        this.pendingReads.size === 0;
      if (confirmed && (!this.lastConfirmedAt || sentAt > this.lastConfirmedAt))
        this.lastConfirmedAt = sentAt;
    } catch (err) {
      this.onListenerLost(client, err);
    } finally {
      this.pinging = false;
      if (timer) clearTimeout(timer);
    }
  }

  private noteError(where: string, err: unknown): void {
    // After close(), connections still closing may report errors (e.g. the database being dropped): moot.
    if (this.closed) return;
    const message = err instanceof Error ? err.message : String(err);
    const key = `${where}: ${message}`;
    // One line per distinct error per 30 s: a long outage must not flood the log.
    const now = Date.now();
    const last = this.loggedErrors.get(key);
    if (last === undefined || now - last > 30_000) {
      this.loggedErrors.set(key, now);
      if (this.loggedErrors.size > 100) this.loggedErrors.clear();
      this.log.warn({ err: message, where }, 'routing cache degraded: serving the last known routing state');
    }
    this.lastError = key;
  }
}

/** Creates a routing cache and loads it (see {@link RoutingCache}). */
export async function createRoutingCache(options: RoutingCacheOptions): Promise<RoutingCache> {
  const cache = new RoutingCache(options);
  await cache.start(options.failOnInitialLoad ?? true);
  return cache;
}

function rawConnectionString(db: Database): string | undefined {
  // `db.url` is redacted (password replaced); the pool keeps the real one.
  return poolConnectionString(db.pool) ?? db.url;
}

function poolConnectionString(pool: pg.Pool | undefined): string | undefined {
  const cs = (pool?.options as { connectionString?: string } | undefined)?.connectionString;
  return typeof cs === 'string' && cs !== '' ? cs : undefined;
}
