import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createRoutingCache, type RoutingCache } from '../src/data-plane/router/routing-cache';
import { changeRoute, createRoute, type SlotConfig } from '../src/store/routing-state';
import { freePort } from '../src/store/database';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { startTcpProxy, viaProxy } from './helpers/tcp-proxy';

const BLUE: SlotConfig = { target: { provider: 'anthropic', model: 'claude-sonnet-4' }, fallbacks: [] };
const GREEN: SlotConfig = { target: { provider: 'openai', model: 'gpt-4o' }, fallbacks: [] };
const CTX = { actor: 'test', reason: 'test' };

const unhandled: unknown[] = [];
const onUnhandled = (err: unknown) => unhandled.push(err);

let db: TestDatabase;
const caches: RoutingCache[] = [];
beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  db = await createTestDatabase();
});
afterAll(async () => {
  for (const c of caches) await c.close();
  await db?.close();
  process.off('unhandledRejection', onUnhandled);
});

async function track(p: Promise<RoutingCache>): Promise<RoutingCache> {
  const c = await p;
  caches.push(c);
  return c;
}

/** Resolves with the elapsed ms once `cond` holds; rejects after `timeoutMs`. Checks every 2 ms. */
async function waitFor(cond: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (cond()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A TCP proxy in front of Postgres that the test can cut and restore, like a network partition. */
class Proxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}
  async start(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = null;
  }
}

function viaPort(connectionString: string, port: number): string {
  const u = new URL(connectionString);
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString();
}

describe('routing cache', () => {
  it('three replicas see a change within 1 s via NOTIFY (poll set to 30 s)', async () => {
    const created = await createRoute(db.pool, { name: 'fanout', blue: BLUE, green: GREEN }, CTX);
    const seen: number[][] = [[], [], []];
    const replicas = await Promise.all(
      [0, 1, 2].map((i) =>
        track(
          createRoutingCache({
            connectionString: db.connectionString,
            notify: true,
            pollIntervalMs: 30_000,
            onChange: (next) => next && seen[i].push(next.version),
          }),
        ),
      ),
    );
    for (const r of replicas) {
      expect(r.get('fanout')).toEqual(created);
      expect(r.health()).toMatchObject({ ok: true, stale: false, notify: 'listening', routes: 1 });
    }
    let version = created.version;
    const timings: number[] = [];
    for (let step = 1; step <= 5; step++) {
      const t0 = performance.now();
      const next = await changeRoute(db.pool, 'fanout', {
        expectedVersion: version,
        patch: { canaryBps: step * 100 },
        ...CTX,
      });
      version = next.version;
      await waitFor(() => replicas.every((r) => r.get('fanout')?.version === version), 1000);
      timings.push(performance.now() - t0);
      for (const r of replicas) expect(r.get('fanout')).toEqual(next);
    }
    console.log(
      `NOTIFY propagation to 3 replicas (commit -> all caches), ms: ${timings.map((t) => t.toFixed(1)).join(', ')}`,
    );
    expect(Math.max(...timings)).toBeLessThan(1000);
    for (const s of seen) expect(s).toEqual([1, 2, 3, 4, 5, 6]);
    // The poll is 30 s away, yet the state stays confirmed: the listener's liveness ping (every second)
    // answers, so notifications reach it as changes commit.
    await new Promise((r) => setTimeout(r, 3500));
    for (const r of replicas) {
      expect(r.health()).toMatchObject({ ok: true, stale: false });
      expect(r.health().stalenessMs).toBeLessThan(2500);
    }

    // A route created later reaches the caches the same way.
    await createRoute(db.pool, { name: 'fanout-2', blue: BLUE }, CTX);
    await waitFor(() => replicas.every((r) => r.get('fanout-2')?.version === 1), 1000);
  });

  it('with notify off, the poll delivers within the poll interval', async () => {
    const created = await createRoute(db.pool, { name: 'polled', blue: BLUE, green: GREEN }, CTX);
    const cache = await track(
      createRoutingCache({ connectionString: db.connectionString, notify: false, pollIntervalMs: 300 }),
    );
    expect(cache.health()).toMatchObject({ ok: true, notify: 'off' });
    expect(cache.get('polled')?.version).toBe(created.version);
    const timings: number[] = [];
    let version = created.version;
    for (let step = 1; step <= 3; step++) {
      const next = await changeRoute(db.pool, 'polled', {
        expectedVersion: version,
        patch: { canaryBps: step * 10 },
        ...CTX,
      });
      version = next.version;
      timings.push(await waitFor(() => cache.get('polled')?.version === version, 600));
    }
    console.log(`poll propagation (300 ms interval), ms: ${timings.map((t) => t.toFixed(0)).join(', ')}`);
  });

  it('on connection loss keeps serving the last state, reports degraded, reconnects and catches up', async () => {
    const pgUrl = new URL(db.connectionString);
    const proxy = new Proxy(await freePort(), { host: pgUrl.hostname, port: Number(pgUrl.port || 5432) });
    await proxy.start();
    const created = await createRoute(db.pool, { name: 'partition', blue: BLUE, green: GREEN }, CTX);
    const cache = await track(
      createRoutingCache({
        connectionString: viaPort(db.connectionString, proxy.port),
        notify: true,
        pollIntervalMs: 200,
        reconnectMinMs: 50,
        reconnectMaxMs: 400,
      }),
    );
    expect(cache.health()).toMatchObject({ ok: true, notify: 'listening' });

    await proxy.stop(); // the network to Postgres is gone
    await waitFor(() => !cache.health().ok, 2000);
    const changed = await changeRoute(db.pool, 'partition', {
      expectedVersion: created.version,
      patch: { canaryBps: 0, shadowRate: 0.5 },
      ...CTX,
    });
    await new Promise((r) => setTimeout(r, 600)); // several polls and reconnect attempts fail
    const h = cache.health();
    expect(h.ok).toBe(false);
    expect(h.notify).toBe('reconnecting');
    expect(h.lastError).toBeTruthy();
    expect(h.stalenessMs).toBeGreaterThan(300);
    expect(cache.get('partition')).toEqual(created); // last known state, still served

    await proxy.start(); // the network comes back
    await waitFor(() => cache.get('partition')?.version === changed.version, 3000);
    await waitFor(() => cache.health().ok && cache.health().notify === 'listening', 3000);
    // And NOTIFY works again.
    const again = await changeRoute(db.pool, 'partition', {
      expectedVersion: changed.version,
      patch: { shadowRate: 0.25 },
      ...CTX,
    });
    await waitFor(() => cache.get('partition')?.version === again.version, 1000);
    await cache.close();
    await proxy.stop();
    expect(unhandled).toEqual([]);
  });

  it('a listener gone silent behind a blackholing network is found by its liveness ping and replaced', async () => {
    const pgUrl = new URL(db.connectionString);
    const proxy = await startTcpProxy({ host: pgUrl.hostname, port: Number(pgUrl.port || 5432) });
    const created = await createRoute(db.pool, { name: 'silent', blue: BLUE, green: GREEN }, CTX);
    const cache = await track(
      createRoutingCache({
        connectionString: viaProxy(db.connectionString, proxy),
        notify: true,
        // The poll is far away: only the liveness ping can find the dead listener, and only NOTIFY (or the
        // catch-up read after a reconnect) can bring changes in.
        pollIntervalMs: 60_000,
        livenessIntervalMs: 200,
        pingTimeoutMs: 500,
        readTimeoutMs: 500,
        reconnectMinMs: 50,
        reconnectMaxMs: 300,
        staleAfterMs: 1000,
      }),
    );
    expect(cache.health()).toMatchObject({ ok: true, stale: false, notify: 'listening' });

    proxy.set('blackhole'); // nothing errors, nothing answers
    await waitFor(() => cache.health().notify === 'reconnecting', 3000);
    await waitFor(() => cache.health().stale, 3000);
    const changed = await changeRoute(db.pool, 'silent', {
      expectedVersion: created.version,
      patch: { canaryBps: 700 },
      ...CTX,
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(cache.get('silent')).toEqual(created); // the last known state, still served
    const during = cache.health();
    expect(during).toMatchObject({ ok: false, stale: true, notify: 'reconnecting' });
    expect(during.stalenessMs).toBeGreaterThan(1000);

    proxy.set('up');
    // A new listener connects and catches up on what it missed; staleness falls back.
    await waitFor(() => cache.get('silent')?.version === changed.version, 5000);
    await waitFor(() => cache.health().notify === 'listening' && !cache.health().stale, 5000);
    expect(cache.health().stalenessMs).toBeLessThan(1000);
    const again = await changeRoute(db.pool, 'silent', {
      expectedVersion: changed.version,
      patch: { canaryBps: 1400 },
      ...CTX,
    });
    await waitFor(() => cache.get('silent')?.version === again.version, 2000);
    await cache.close();
    await proxy.close();
    expect(unhandled).toEqual([]);
  });

  it('Postgres killing the listener connection (pg_terminate_backend) is survived', async () => {
    const created = await createRoute(db.pool, { name: 'terminated', blue: BLUE, green: GREEN }, CTX);
    const cache = await track(
      createRoutingCache({
        connectionString: db.connectionString,
        notify: true,
        pollIntervalMs: 30_000,
        reconnectMinMs: 20,
      }),
    );
    await db.pool.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%'`,
    );
    await waitFor(
      () => cache.health().notify === 'listening' && cache.health().lastError === undefined,
      3000,
    ).catch(() => {});
    const next = await changeRoute(db.pool, 'terminated', {
      expectedVersion: created.version,
      patch: { canaryBps: 300 },
      ...CTX,
    });
    await waitFor(() => cache.get('terminated')?.version === next.version, 2000);
    expect(unhandled).toEqual([]);
  });

  it('a pool that was ended: serves the last state, degraded with an error, no unhandled rejection', async () => {
    const created = await createRoute(db.pool, { name: 'ended', blue: BLUE }, CTX);
    const pool = new pg.Pool({ connectionString: db.connectionString, max: 2 });
    const cache = await track(createRoutingCache({ pool, notify: false, pollIntervalMs: 100 }));
    expect(cache.get('ended')).toEqual(created);
    await pool.end();
    await waitFor(() => !cache.health().ok, 1000);
    const h = cache.health();
    expect(h.lastError).toMatch(/pool/i);
    expect(cache.get('ended')).toEqual(created);
    await new Promise((r) => setTimeout(r, 300));
    expect(unhandled).toEqual([]);
  });

  it('a dead port: initial load fails clearly, or starts empty and degraded when asked', async () => {
    const dead = `postgres://postgres@127.0.0.1:${await freePort()}/nothing`;
    await expect(
      createRoutingCache({ connectionString: dead, notify: true, pollIntervalMs: 100 }),
    ).rejects.toThrow(/initial load failed/);
    const cache = await track(
      createRoutingCache({
        connectionString: dead,
        notify: true,
        pollIntervalMs: 100,
        reconnectMinMs: 20,
        failOnInitialLoad: false,
      }),
    );
    await new Promise((r) => setTimeout(r, 400));
    const h = cache.health();
    expect(h).toMatchObject({ ok: false, routes: 0, notify: 'reconnecting', lastRefreshAt: null });
    expect(h.lastError).toMatch(/ECONNREFUSED|connect/);
    expect(cache.get('anything')).toBeUndefined();
    await cache.close();
    expect(unhandled).toEqual([]);
  });

  it('a route deleted by hand disappears at the next poll', async () => {
    await createRoute(db.pool, { name: 'doomed', blue: BLUE }, CTX);
    const cache = await track(
      createRoutingCache({ connectionString: db.connectionString, notify: true, pollIntervalMs: 100 }),
    );
    expect(cache.get('doomed')).toBeDefined();
    await db.pool.query(`DELETE FROM routes WHERE name = 'doomed'`);
    await waitFor(() => cache.get('doomed') === undefined, 1000);
  });
});
