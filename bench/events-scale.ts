/**
 * Evidence at scale: decision queries on raw events (before) and on rollups (after), side by side, as the
 * events grow 10x, with event ingestion running at the same time; and the cost of dropping a day.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx bench/events-scale.ts [--rows 20000000]
 *
 * Creates a scratch database next to DATABASE_URL's and drops it at the end. Loads `rows / 10` synthetic
 * events (default rows 2 000 000) over the last 7 days across 20 routes with generate_series (their
 * rollups aggregated from the same rows, as the writer would have upserted them), measures, loads the rest
 * up to `rows` (the same days, 10x the traffic), measures again. Each measurement runs while the real event
 * writer ingests at a target of 20 000 events/s (printed: what it achieved). The canary started 2 days ago,
 * its current step 6 hours ago; trigger windows are 15 and 60 minutes; the baseline is the 15 minutes before
 * the canary started.
 * Targets: each decision query < 100 ms at full size and flat across the 10x; dropping a day < 1 s without
 * blocking writers or readers.
 */
import pg from 'pg';
import { migrate } from '../src/store/migrate';
import { createEventWriter, type RequestEvent } from '../src/store/event-writer';
import { armStats, stableP95, type ArmQuery } from '../src/store/arm-statistics';
import { armStatsRaw, stableP95Raw } from '../src/store/arm-statistics-raw';
import { detachAndDrop, listPartitions } from '../src/store/partitions';
import { eventRollupUpsert, ROLLUP_LEVELS, scoreRollupUpsert } from '../src/store/rollup-sql';
import { databaseUrlOrExit, median, percentile, scratchDatabase } from './lib';

const baseUrl = databaseUrlOrExit();
const argRows = process.argv.indexOf('--rows');
const totalRows = argRows > 0 ? Number(process.argv[argRows + 1]) : 2_000_000;
const ROUTES = 20;
const DAYS = 7;
const INGEST_PER_S = 20_000;
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

const now = Date.now();
const canaryFrom = now - 2 * DAY;
const stepFrom = now - 6 * HOUR;

/** Inserts `n` events spread over the last DAYS days (canary 5% of traffic since canaryFrom), one day at a time. */
async function load(pool: pg.Pool, n: number, seed: number): Promise<void> {
  const perDay = Math.round(n / DAYS);
  for (let d = 0; d < DAYS; d++) {
    const t = Date.now();
    const dayStart = new Date(now - (DAYS - d) * DAY).toISOString();
    const c = await pool.connect();
    try {
      await c.query('SET statement_timeout = 0');
      await c.query(`SELECT setseed($1)`, [((seed * 31 + d) % 1000) / 1000]);
      await c.query(`DROP TABLE IF EXISTS load_chunk`);
      // Latency log-normal around 800 ms; 1% timeouts, 0.2% cancelled, 1% answered by a fallback, 10% scored.
      await c.query(
        `CREATE UNLOGGED TABLE load_chunk AS
         SELECT 'bench-' || $3 || '-' || $4 || '-' || g AS request_id,
                'route-' || (g % ${ROUTES}) AS route,
                CASE WHEN ts >= $5::timestamptz AND random() < 0.05 THEN 'canary' ELSE 'stable' END AS tag,
                ts AS created_at,
                exp(ln(800) + 0.5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS latency_ms,
                CASE WHEN random() < 0.01 THEN 'timeout' WHEN random() < 0.002 THEN 'cancelled' END AS error_class,
                CASE WHEN random() < 0.01 THEN 1 ELSE 0 END AS fallback_depth,
                CASE WHEN random() < 0.1 THEN 1 + floor(random() * 5) END AS quality_score,
                random() * 0.002 AS cost_usd
           FROM generate_series(1, $2::int) g,
                LATERAL (SELECT $1::timestamptz + random() * interval '1 day' + g * interval '0 s' AS ts) x`,
        [dayStart, perDay, seed, d, new Date(canaryFrom).toISOString()],
      );
      await c.query(
        `INSERT INTO request_events (request_id, route, tag, target, latency_ms, error_class, fallback_depth,
           quality_score, cost_usd, created_at, routing_version)
         SELECT request_id, route, tag, CASE tag WHEN 'canary' THEN 'openai:gpt-4o-mini' ELSE 'anthropic:claude-sonnet-4' END,
                latency_ms, error_class, fallback_depth, quality_score, cost_usd, created_at, 7
           FROM load_chunk`,
      );
      // The rollups, as the writer would have upserted them with these events.
      const chunk = `(SELECT *, CASE tag WHEN 'canary' THEN 'openai:gpt-4o-mini' ELSE 'anthropic:claude-sonnet-4' END AS target,
        7 AS routing_version FROM load_chunk) x`;
      for (const level of ROLLUP_LEVELS) {
        await c.query(eventRollupUpsert(level, chunk));
        await c.query(`CREATE TEMP TABLE scored AS SELECT * FROM ${chunk} WHERE quality_score IS NOT NULL`);
        await c.query(scoreRollupUpsert(level, 'scored'));
        await c.query('DROP TABLE scored');
      }
      await c.query(`DROP TABLE load_chunk`);
    } finally {
      c.release();
    }
    console.log(
      `  day ${d + 1}/${DAYS}: ${perDay.toLocaleString('en-US')} events in ${((Date.now() - t) / 1000).toFixed(1)} s`,
    );
  }
  await pool.query('VACUUM ANALYZE request_events');
  await pool.query('VACUUM ANALYZE request_rollups');
  await pool.query('VACUUM ANALYZE request_rollups_hourly');
}

/** Records events through the real writer at `perS` per second until stopped; returns the rate achieved. */
function ingest(pool: pg.Pool, perS: number) {
  const writer = createEventWriter({ pool, batchSize: 1000, maxBuffer: 100_000, concurrency: 2 });
  let i = 0;
  let running = true;
  const started = Date.now();
  const tick = 20;
  const loop = (async () => {
    while (running) {
      const due = Math.floor(((Date.now() - started) / 1000) * perS);
      for (; i < due; i++) {
        const canary = i % 20 === 0;
        const e: RequestEvent = {
          requestId: `live-${i}`,
          route: `route-${i % ROUTES}`,
          tag: canary ? 'canary' : 'stable',
          target: canary ? 'openai:gpt-4o-mini' : 'anthropic:claude-sonnet-4',
          latencyMs: 300 + (i % 1500),
          errorClass: i % 100 === 0 ? 'timeout' : null,
          routingVersion: 7,
          costUsd: 0.001,
        };
        writer.record(e);
      }
      await new Promise((r) => setTimeout(r, tick));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await writer.close();
      const s = writer.stats();
      const secs = (Date.now() - started) / 1000;
      return { perS: s.written / secs, dropped: s.dropped, written: s.written };
    },
  };
}

type Query = { name: string; raw: () => Promise<unknown>; rollup: () => Promise<unknown> };

function queries(pool: pg.Pool): Query[] {
  const route = 'route-3';
  const arm = (tag: 'stable' | 'canary', fromMs: number, extra: Partial<ArmQuery> = {}): ArmQuery => ({
    route,
    tag,
    fromMs,
    toMs: now,
    slowThresholdMs: 1600,
    ...extra,
  });
  const both = (f: typeof armStats) => () =>
    Promise.all([
      f(pool, arm('stable', canaryFrom)),
      f(pool, arm('canary', canaryFrom)),
      f(pool, arm('stable', stepFrom)),
      f(pool, arm('canary', stepFrom)),
    ]);
  const trig = (f: typeof armStats) => () =>
    Promise.all([15, 60].map((m) => f(pool, { route, tag: 'canary', fromMs: now - m * MIN, toMs: now })));
  return [
    { name: 'canary statistics (4 arms: 2 days, 6 h)', raw: both(armStatsRaw), rollup: both(armStats) },
    { name: 'trigger metrics (15 and 60 min)', raw: trig(armStatsRaw), rollup: trig(armStats) },
    {
      name: 'baseline p95 (15 min)',
      raw: () => stableP95Raw(pool, route, canaryFrom - 15 * MIN, canaryFrom),
      rollup: () => stableP95(pool, route, canaryFrom - 15 * MIN, canaryFrom),
    },
  ];
}

async function time(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

async function measure(
  pool: pg.Pool,
  label: string,
): Promise<Record<string, { raw: number; rollup: number }>> {
  const { rows } = await pool.query(`SELECT count(*)::bigint AS n FROM request_events`);
  console.log(`\n${label}: ${Number(rows[0].n).toLocaleString('en-US')} rows in request_events`);
  const ing = ingest(pool, INGEST_PER_S);
  await new Promise((r) => setTimeout(r, 2000));
  const out: Record<string, { raw: number; rollup: number }> = {};
  for (const q of queries(pool)) {
    await q.raw(); // warm the cache for both: steady state, not first touch
    await q.rollup();
    const raw: number[] = [];
    const rollup: number[] = [];
    for (let i = 0; i < 5; i++) {
      raw.push(await time(q.raw));
      rollup.push(await time(q.rollup));
    }
    out[q.name] = { raw: median(raw), rollup: median(rollup) };
    console.log(
      `  ${q.name.padEnd(42)} raw ${median(raw).toFixed(1).padStart(8)} ms   rollups ${median(rollup).toFixed(1).padStart(7)} ms   (${(median(raw) / median(rollup)).toFixed(0)}x)`,
    );
  }
  const r = await ing.stop();
  console.log(
    `  ingestion meanwhile: ${Math.round(r.perS).toLocaleString('en-US')} events/s written (target ${INGEST_PER_S.toLocaleString('en-US')}), ${r.dropped} dropped`,
  );
  return out;
}

/** Drops the oldest day while a writer and a reader run; their latencies before and during the drop. */
async function retention(pool: pg.Pool): Promise<void> {
  // The oldest full day of events (the first day of the load is partial).
  const day = new Date(now - (DAYS - 1) * DAY).toISOString().slice(0, 10).replace(/-/g, '');
  const oldest = (await listPartitions(pool)).find((p) => p.name === `request_events_p${day}`)!;
  const { rows } = await pool.query(`SELECT count(*)::bigint AS n FROM ${oldest.name}`);
  console.log(
    `\nretention: dropping ${oldest.name} (${Number(rows[0].n).toLocaleString('en-US')} rows, ${(oldest.bytes / 2 ** 20).toFixed(0)} MiB)`,
  );
  const state = { phase: 'before' as 'before' | 'during' | 'after' };
  const lat: Record<string, { write: number[]; read: number[] }> = {
    before: { write: [], read: [] },
    during: { write: [], read: [] },
  };
  let running = true;
  const writerLoop = (async () => {
    for (let i = 0; running; i++) {
      const t = performance.now();
      await pool.query(
        `INSERT INTO request_events (request_id, route, tag, target, latency_ms) VALUES ($1, 'route-1', 'stable', 'x', 100)`,
        [`probe-${i}`],
      );
      if (state.phase !== 'after') lat[state.phase].write.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const readerLoop = (async () => {
    while (running) {
      const t = performance.now();
      await armStats(pool, {
        route: 'route-2',
        tag: 'stable',
        fromMs: Date.now() - 60 * MIN,
        toMs: Date.now(),
      });
      if (state.phase !== 'after') lat[state.phase].read.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const ing = ingest(pool, INGEST_PER_S);
  await new Promise((r) => setTimeout(r, 3000));
  state.phase = 'during';
  const t = performance.now();
  await detachAndDrop(pool, oldest);
  const dropMs = performance.now() - t;
  state.phase = 'after';
  running = false;
  await Promise.all([writerLoop, readerLoop]);
  const r = await ing.stop();
  const fmt = (v: number[]) =>
    `p50 ${percentile(v, 50).toFixed(1)} ms, max ${Math.max(...v).toFixed(1)} ms (${v.length})`;
  console.log(`  DETACH CONCURRENTLY + DROP: ${dropMs.toFixed(0)} ms`);
  console.log(`  single-row insert before: ${fmt(lat.before.write)}   during: ${fmt(lat.during.write)}`);
  console.log(`  decision read     before: ${fmt(lat.before.read)}   during: ${fmt(lat.during.read)}`);
  console.log(
    `  ingestion meanwhile: ${Math.round(r.perS).toLocaleString('en-US')} events/s, ${r.dropped} dropped`,
  );
}

// --keep leaves the database (its URL is printed) for a later run with --reuse <url> (queries only).
const keep = process.argv.includes('--keep');
const argReuse = process.argv.indexOf('--reuse');
const reuse = argReuse > 0 ? process.argv[argReuse + 1] : undefined;
const scratch = reuse
  ? { url: reuse, drop: async () => {} }
  : await scratchDatabase(baseUrl, 'mr_bench_scale');
if (keep) console.log(`database: ${scratch.url}`);
// A plain pool: the loading statements run for minutes, past the app pool's query timeout.
const db = {
  // jit=off as the application's pool (src/store/database.ts) sets it, for both sides.
  pool: new pg.Pool({ connectionString: scratch.url, max: 12, options: '-c jit=off' }),
  close: () => db.pool.end(),
};
db.pool.on('error', () => {}); // the drop at the end terminates idle connections
try {
  if (reuse) {
    await measure(db.pool, 'reused database');
    process.exit(0);
  }
  await migrate(db.pool);
  const { rows: dd } = await db.pool.query(
    `SELECT event_partitions_ensure('request_events', (now() AT TIME ZONE 'UTC')::date - ${DAYS + 1}, (now() AT TIME ZONE 'UTC')::date)`,
  );
  void dd;
  console.log(`${ROUTES} routes, ${DAYS} days; machine: shared, see the caveat in the report`);
  console.log(`loading ${(totalRows / 10).toLocaleString('en-US')} events`);
  await load(db.pool, totalRows / 10, 1);
  const small = await measure(db.pool, 'at 1/10 size');
  if (process.argv.includes('--small-only')) process.exit(0);
  console.log(`loading ${((totalRows * 9) / 10).toLocaleString('en-US')} more events (10x the traffic)`);
  await load(db.pool, (totalRows * 9) / 10, 2);
  const big = await measure(db.pool, 'at full size');
  console.log('\ngrowth 10x in rows: query time ratio (full / tenth)');
  for (const k of Object.keys(big))
    console.log(
      `  ${k.padEnd(42)} raw ${(big[k].raw / small[k].raw).toFixed(1)}x   rollups ${(big[k].rollup / small[k].rollup).toFixed(1)}x`,
    );
  await retention(db.pool);
} finally {
  await db.close();
  if (!keep) await scratch.drop();
}
