/**
 * Routing-change propagation: time from a committed routing change to the LAST of 4 gateway processes
 * serving the new state.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx bench/propagation.ts
 *
 * Starts 4 gateways with the real CLI (`model-rollout gateway --simulator URL --no-auth`) on a scratch
 * database, and a simulator (latency 0) in this process. Each gateway is polled about once per millisecond on
 * `GET /v1/routes/prop` (the state its router serves from); after every flip a real chat completion through
 * each gateway must come back with the new `x-rollout-target`. FLIPS (default 50) blue-green flips with
 * `changeRoute`; reported: p50/p99/max of the time from `changeRoute` resolving (the commit acknowledged)
 * to the last gateway reporting the new state, and the same from the start of the `changeRoute` call.
 * Resolution: one poll (~1-2 ms).
 * Target: p99 < 100 ms with NOTIFY.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Pool } from 'undici';
import { startSimulator } from '../src/tooling/simulator';
import { migrate } from '../src/store/migrate';
import { changeRoute, createRoute, getRoute } from '../src/store/routing-state';
import { databaseUrlOrExit, freePort, percentile, scratchDatabase } from './lib';

const FLIPS = Number(process.env.FLIPS ?? 50);
const GATEWAYS = 4;
const root = fileURLToPath(new URL('..', import.meta.url));
const BLUE = 'openai:gpt-4o-mini';
const GREEN = 'deepseek:deepseek-chat';

function startGateway(port: number, simulatorUrl: string, databaseUrl: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'gateway',
      '--port',
      String(port),
      '--simulator',
      simulatorUrl,
      '--no-auth',
    ],
    {
      cwd: root,
      env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('gateway:')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}: ${out}`)));
  });
}

async function main(): Promise<void> {
  const scratch = await scratchDatabase(databaseUrlOrExit(), 'mr_prop');
  const pool = new pg.Pool({ connectionString: scratch.url, max: 2 });
  const sim = await startSimulator({ scenario: { default: { latencyMs: { median: 0 }, outputTokens: 5 } } });
  const children: ChildProcess[] = [];
  const clients: Pool[] = [];
  let running = true;
  try {
    await migrate(pool);
    const slot = (t: string) => ({
      target: { provider: t.split(':')[0], model: t.split(':')[1] },
      fallbacks: [],
    });
    await createRoute(
      pool,
      { name: 'prop', blue: slot(BLUE), green: slot(GREEN) },
      { actor: 'bench', reason: 'propagation' },
    );

    const ports = await Promise.all(Array.from({ length: GATEWAYS }, freePort));
    children.push(...(await Promise.all(ports.map((p) => startGateway(p, sim.url, scratch.url)))));
    const body = JSON.stringify({ model: 'prop', messages: [{ role: 'user', content: 'ping' }] });

    // Per gateway: the time it first reported `expected` as the stable target after `since` (NaN until then).
    // Polls `GET /v1/routes/prop` (what the replica serves from its routing cache) about once per ms: cheap
    // enough not to load the gateways, whose CPU the notification handling needs too.
    let expected = BLUE;
    let since = 0;
    const seenAt = new Array<number>(GATEWAYS).fill(NaN);
    let pollErrors = 0;
    const loops = ports.map(async (port, g) => {
      const client = new Pool(`http://127.0.0.1:${port}`, { connections: 1 });
      clients.push(client);
      while (running) {
        const sent = performance.now();
        try {
          const res = await client.request({ path: '/v1/routes/prop', method: 'GET' });
          const state = (await res.body.json()) as { stable: string };
          if (sent >= since && Number.isNaN(seenAt[g]) && state.stable === expected)
            seenAt[g] = performance.now();
        } catch (err) {
          pollErrors++;
          if (pollErrors <= 3) console.error(`poll of gateway ${g} failed: ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 1));
      }
    });
    /** A real completion through every gateway: each must answer from the new stable target. */
    const checkServed = async () => {
      for (const client of clients) {
        const res = await client.request({
          path: '/v1/chat/completions',
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        await res.body.dump();
        if (res.headers['x-rollout-target'] !== expected)
          throw new Error(`served by ${res.headers['x-rollout-target']}, expected ${expected}`);
      }
    };

    const fromCommit: number[] = [];
    const fromCall: number[] = [];
    for (let flip = 0; flip < FLIPS; flip++) {
      const before = (await getRoute(pool, 'prop'))!;
      const next = before.stableSlot === 'blue' ? 'green' : 'blue';
      seenAt.fill(NaN);
      expected = next === 'green' ? GREEN : BLUE;
      const t0 = performance.now();
      since = t0;
      await changeRoute(pool, 'prop', {
        actor: 'bench',
        reason: `flip ${flip}`,
        expectedVersion: before.version,
        patch: { stableSlot: next },
      });
      const t1 = performance.now();
      const deadline = t1 + 5000;
      while (seenAt.some(Number.isNaN) && performance.now() < deadline)
        await new Promise((r) => setTimeout(r, 1));
      if (seenAt.some(Number.isNaN))
        throw new Error(`flip ${flip}: not every gateway served the new state within 5 s`);
      const last = Math.max(...seenAt);
      fromCommit.push(Math.max(0, last - t1));
      fromCall.push(last - t0);
      await checkServed();
      await new Promise((r) => setTimeout(r, 20));
    }
    running = false;
    await Promise.all(loops);

    const f = (x: number) => x.toFixed(1);
    console.log(
      `propagation to the last of ${GATEWAYS} gateway processes, ${FLIPS} flips (LISTEN/NOTIFY, poll safety net 1 s):`,
    );
    console.log(
      `  from commit acknowledged: p50 ${f(percentile(fromCommit, 50))} ms, p99 ${f(percentile(fromCommit, 99))} ms, max ${f(Math.max(...fromCommit))} ms`,
    );
    console.log(
      `  from changeRoute call:    p50 ${f(percentile(fromCall, 50))} ms, p99 ${f(percentile(fromCall, 99))} ms, max ${f(Math.max(...fromCall))} ms`,
    );
    if (pollErrors > 0) console.log(`  (${pollErrors} polls failed and were retried)`);
  } finally {
    running = false;
    for (const c of clients) await c.close().catch(() => {});
    for (const c of children) {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    }
    await sim.close();
    await pool.end();
    await scratch.drop();
  }
}

await main();
