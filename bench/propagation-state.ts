/**
 * How fast a routing change reaches every router replica's cache.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx bench/propagation-state.ts
 *
 * Starts REPLICAS routing caches (default 10), each with its own pool and LISTEN connection, then makes
 * CHANGES compare-and-set changes (default 50) and measures commit-to-visible time in every cache, with
 * NOTIFY (poll 30 s, so NOTIFY is the only path) and with polling only (poll 250 ms). Own scratch database.
 */
import pg from 'pg';
import { openDatabase } from '../src/store/database';
import { migrate } from '../src/store/migrate';
import { createRoutingCache, type RoutingCache } from '../src/data-plane/router/routing-cache';
import { changeRoute, createRoute } from '../src/store/routing-state';
import { databaseUrlOrExit, percentile, scratchDatabase } from './lib';

const baseUrl = databaseUrlOrExit();
const replicas = Number(process.env.REPLICAS ?? 10);
const changes = Number(process.env.CHANGES ?? 50);

async function measure(
  label: string,
  pool: pg.Pool,
  url: string,
  notify: boolean,
  pollIntervalMs: number,
  n: number,
) {
  const route = `bench-${notify ? 'notify' : 'poll'}`;
  let state = await createRoute(
    pool,
    {
      name: route,
      blue: { target: { provider: 'anthropic', model: 'claude-sonnet-4' }, fallbacks: [] },
      green: { target: { provider: 'openai', model: 'gpt-4o' }, fallbacks: [] },
    },
    { actor: 'bench', reason: 'setup' },
  );
  const caches: RoutingCache[] = [];
  for (let i = 0; i < replicas; i++)
    caches.push(await createRoutingCache({ connectionString: url, notify, pollIntervalMs }));
  const samples: number[] = [];
  try {
    for (let k = 0; k < n; k++) {
      const target = state.version + 1;
      const pending = new Set(caches);
      let t0 = 0;
      // onChange fires the moment a cache applies the new state.
      const unsubscribe = caches.map((c) =>
        c.subscribe((next) => {
          if (next?.name === route && next.version === target && pending.delete(c))
            samples.push(performance.now() - t0);
        }),
      );
      const allSeen = new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (pending.size === 0) {
            clearInterval(check);
            resolve();
          }
        }, 1);
      });
      t0 = performance.now();
      state = await changeRoute(pool, route, {
        expectedVersion: state.version,
        patch: { canaryBps: (k * 37) % 10000 },
        actor: 'bench',
        reason: `step ${k}`,
      });
      await allSeen;
      for (const u of unsubscribe) u();
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    for (const c of caches) await c.close();
  }
  samples.sort((a, b) => a - b);
  console.log(
    `${label.padEnd(34)} ${replicas} replicas x ${n} changes: p50 ${percentile(samples, 50).toFixed(1)} ms, p99 ${percentile(samples, 99).toFixed(1)} ms, max ${samples[samples.length - 1].toFixed(1)} ms (call-to-visible, includes the commit)`,
  );
}

const scratch = await scratchDatabase(baseUrl, 'mr_bench');
const db = await openDatabase({ url: scratch.url });
try {
  await migrate(db.pool);
  await measure('NOTIFY (poll 30 s)', db.pool, scratch.url, true, 30_000, changes);
  await measure('poll only (250 ms)', db.pool, scratch.url, false, 250, Math.min(changes, 20));
} finally {
  await db.close();
  await scratch.drop();
}
