/**
 * Gateway overhead, side by side with the Portkey gateway, on the same fast local upstream.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx bench/gateway.ts
 *
 * Layout on a 2-core machine:
 * - core 1: the gateway under test, alone (ours, then Portkey's; `taskset -c 1`);
 * - core 0: this process (open-loop load generator, undici keep-alive Pool) and the upstream.
 * The upstream is a minimal OpenAI-compatible server on raw `net` (a canned chat completion, or a canned
 * 12-chunk SSE stream when the body asks for `"stream":true`), so it costs far less CPU per request than
 * the simulator and the numbers measure the gateways, not the upstream.
 *
 * Ours runs as in production: auth on (bearer check), request events recorded to Postgres (capture off),
 * circuit breaker and quality check on, lean transport, upstream bytes passed through.
 * Reported per target: latency p50/p99 at 200 and 1000 requests/s (open loop, measured from the moment each
 * request is sent), added latency vs calling the upstream directly, the highest throughput at saturation
 * (closed loop, 64 concurrent) on the one core, CPU time per request (from /proc), peak RSS (VmHWM).
 * BENCH_SECONDS (default 10) per measurement. Portkey's streaming is not measured (it fails on Node 20).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Pool } from 'undici';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const self = fileURLToPath(import.meta.url);
const root = fileURLToPath(new URL('..', import.meta.url));
const GATEWAY_KEY = 'sk-bench-gateway-key';

// ------------------------------------------------------------------------------------------------ upstream

const ANSWER =
  'To reset your password, open Settings, choose Security, then Reset password. If you no longer have access ' +
  'to your email address, use the recovery phone number on file or contact support with your account id.';

function cannedResponses(): { json: Buffer; sse: Buffer } {
  const completion = JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: ANSWER, refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 250, completion_tokens: 45, total_tokens: 295 },
  });
  const words = ANSWER.split(/(?<= )/);
  const per = Math.ceil(words.length / 12);
  const chunk = (delta: object, finish: string | null, extra = {}) =>
    `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`;
  let sse = chunk({ role: 'assistant', content: '' }, null);
  for (let i = 0; i < words.length; i += per) sse += chunk({ content: words.slice(i, i + per).join('') }, null);
  sse += chunk({}, 'stop');
  sse += `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini', choices: [], usage: { prompt_tokens: 250, completion_tokens: 45, total_tokens: 295 } })}\n\n`;
  sse += 'data: [DONE]\n\n';
  const http = (type: string, body: string) =>
    Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: ${type}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: keep-alive\r\n\r\n${body}`);
  return { json: http('application/json', completion), sse: http('text/event-stream', sse) };
}

/** HTTP/1.1 keep-alive, content-length bodies only (every client here sends them). */
function runUpstream(port: number): void {
  const { json, sse } = cannedResponses();
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    let buffer: Buffer = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (data: Buffer) => {
      buffer = buffer.length ? Buffer.concat([buffer, data]) : data;
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString('latin1');
        const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffer.length < end + 4 + length) return;
        const body = buffer.subarray(end + 4, end + 4 + length);
        buffer = buffer.subarray(end + 4 + length);
        socket.write(body.includes('"stream":true') ? sse : json);
      }
    });
  });
  server.listen(port, '127.0.0.1', () => console.log('ready'));
}

// ------------------------------------------------------------------------------------------------ our gateway

async function runOurs(port: number, upstream: string, databaseUrl: string, passThrough: boolean): Promise<void> {
  const { openDatabase } = await import('../src/store/database');
  const { createProviderRegistry } = await import('../src/providers');
  const { createRouter } = await import('../src/router/router');
  const { createGateway } = await import('../src/gateway/server');
  const db = await openDatabase({ url: databaseUrl, poolSize: 4 });
  const registry = createProviderRegistry({
    providers: { openai: { baseUrl: `${upstream}/v1` } },
    env: { OPENAI_API_KEY: 'sk-bench-upstream-key' },
  });
  // BENCH_EVENTS=0 turns event recording off, to measure what it costs.
  const events = process.env.BENCH_EVENTS === '0' ? false : undefined;
  const router = await createRouter({ database: db, providers: { registry }, keepRaw: passThrough, events });
  const gateway = createGateway({ router, auth: { keys: [GATEWAY_KEY] }, passThrough });
  await gateway.listen({ port, host: '127.0.0.1' });
  console.log('ready');
  process.on('SIGTERM', () => {
    void (async () => {
      await gateway.close();
      await router.close();
      await db.close();
      process.exit(0);
    })();
  });
}

// ------------------------------------------------------------------------------------------------ load

const SYSTEM =
  'You are the support assistant of ACME Corp. Answer briefly and politely, in plain text. Never invent ' +
  'account details; when you do not know, say so and point the customer to support@acme.example. ' +
  'Company policies: refunds within 30 days with a receipt; passwords are reset from Settings > Security; ' +
  'two-factor authentication can be turned on for every account; support hours are 9 to 17 CET on weekdays. ';

function requestBody(model: string, stream: boolean, i: number): string {
  const messages = [
    { role: 'system', content: SYSTEM.repeat(2) },
    { role: 'user', content: `Request ${i}: how do I reset my password if I no longer have access to my email address?` },
  ];
  return JSON.stringify({ model, messages, user: `user-${i % 1000}`, ...(stream ? { stream: true } : {}) });
}

interface Target {
  name: string;
  url: string;
  model: string;
  headers: Record<string, string>;
  pid?: number;
}

interface Sample {
  latencies: number[];
  ttfb: number[];
  errors: number;
  statuses: Map<number, number>;
}

async function send(pool: Pool, target: Target, body: string, sample: Sample, stream: boolean): Promise<void> {
  const start = performance.now();
  try {
    const res = await pool.request({ path: '/v1/chat/completions', method: 'POST', headers: target.headers, body });
    let first = true;
    for await (const _chunk of res.body) {
      if (first && stream) sample.ttfb.push(performance.now() - start);
      first = false;
    }
    if (res.statusCode !== 200) {
      sample.errors++;
      sample.statuses.set(res.statusCode, (sample.statuses.get(res.statusCode) ?? 0) + 1);
      return;
    }
    sample.latencies.push(performance.now() - start);
  } catch {
    sample.errors++;
  }
}

const newSample = (): Sample => ({ latencies: [], ttfb: [], errors: 0, statuses: new Map() });

/** Open loop: requests leave on schedule whatever the responses do. */
async function openLoop(pool: Pool, target: Target, rate: number, durationS: number, stream = false): Promise<Sample> {
  const sample = newSample();
  const total = Math.round(rate * durationS);
  const interval = 1000 / rate;
  const pending = new Set<Promise<void>>();
  const t0 = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - t0) / interval) + 1);
      while (sent < due) {
        const p = send(pool, target, requestBody(target.model, stream, sent), sample, stream);
        sent++;
        pending.add(p);
        void p.finally(() => pending.delete(p));
      }
      if (sent >= total) resolve();
      else setTimeout(tick, Math.max(0, t0 + sent * interval - performance.now()));
    };
    tick();
  });
  await Promise.all(pending);
  return sample;
}

/** Closed loop at `concurrency`: the throughput at saturation. */
async function closedLoop(pool: Pool, target: Target, concurrency: number, durationS: number): Promise<{ rps: number; sample: Sample }> {
  const sample = newSample();
  const end = performance.now() + durationS * 1000;
  let i = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) await send(pool, target, requestBody(target.model, false, i++), sample, false);
    }),
  );
  return { rps: sample.latencies.length / ((performance.now() - t0) / 1000), sample };
}

// ------------------------------------------------------------------------------------------------ measurement helpers

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** CPU seconds (user + system) of a process so far. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function peakRssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * BENCH_NICE=-15 (needs root) runs the load generator, upstream and gateways at that nice level: on a machine
 * shared with other work, a pinned process otherwise waits behind whatever else runs on its core, and the
 * latencies measure the scheduler, not the gateway. Off by default: it slows everything else down.
 */
const NICE = process.env.BENCH_NICE ? Number(process.env.BENCH_NICE) : undefined;

function start(core: number, args: string[], readyLine: RegExp, env: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
  const command = ['taskset', '-c', String(core), process.execPath, ...args];
  if (NICE !== undefined) command.unshift('nice', '-n', String(NICE));
  const child = spawn(command[0], command.slice(1), {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (data: Buffer) => {
      out += data.toString();
      if (readyLine.test(out)) {
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => process.stderr.write(`[${args.at(-1)}] ${d}`));
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code} before it was ready:\n${out}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

interface Report {
  name: string;
  at: Record<number, { p50: number; p99: number; p999: number; errors: number }>;
  maxRps?: number;
  cpuUsPerReq?: number;
  cpuUsAtRate?: number;
  rssMb?: number;
  stream?: { ttfbP50: number; ttfbP99: number; p50: number; p99: number };
  core0Busy?: number;
}

const RATES = [200, 1000];

async function measure(target: Target, upstreamPid: number, options: { saturate: boolean; stream?: boolean }): Promise<Report> {
  const pool = new Pool(target.url, { connections: 128, keepAliveTimeout: 30_000, pipelining: 1 });
  const report: Report = { name: target.name, at: {} };
  await openLoop(pool, target, 200, 2); // warm-up: JIT, connection pools
  for (const rate of RATES) {
    const cpu0 = target.pid ? cpuSeconds(target.pid) : 0;
    const sample = await openLoop(pool, target, rate, seconds);
    const n = sample.latencies.length + sample.errors;
    if (target.pid && rate === 1000) report.cpuUsAtRate = ((cpuSeconds(target.pid) - cpu0) / n) * 1e6;
    report.at[rate] = {
      p50: percentile(sample.latencies, 50),
      p99: percentile(sample.latencies, 99),
      p999: percentile(sample.latencies, 99.9),
      errors: sample.errors,
    };
    if (sample.errors > 0) console.log(`  ${target.name} @${rate}/s: ${sample.errors} errors ${JSON.stringify([...sample.statuses])}`);
  }
  if (options.stream) {
    await openLoop(pool, target, 200, 1, true);
    const sample = await openLoop(pool, target, 200, seconds, true);
    report.stream = {
      ttfbP50: percentile(sample.ttfb, 50),
      ttfbP99: percentile(sample.ttfb, 99),
      p50: percentile(sample.latencies, 50),
      p99: percentile(sample.latencies, 99),
    };
    if (sample.errors > 0) console.log(`  ${target.name} stream: ${sample.errors} errors`);
  }
  if (options.saturate) {
    const cpu0 = target.pid ? cpuSeconds(target.pid) : 0;
    const own0 = process.cpuUsage();
    const up0 = cpuSeconds(upstreamPid);
    const t0 = performance.now();
    const { rps, sample } = await closedLoop(pool, target, 64, seconds);
    const wall = (performance.now() - t0) / 1000;
    report.maxRps = rps;
    if (target.pid) report.cpuUsPerReq = ((cpuSeconds(target.pid) - cpu0) / (sample.latencies.length + sample.errors)) * 1e6;
    const own = process.cpuUsage(own0);
    report.core0Busy = ((own.user + own.system) / 1e6 + cpuSeconds(upstreamPid) - up0) / wall;
    if (sample.errors > 0) console.log(`  ${target.name} saturated: ${sample.errors} errors ${JSON.stringify([...sample.statuses])}`);
  }
  if (target.pid) report.rssMb = peakRssMb(target.pid);
  await pool.close();
  return report;
}

async function main(): Promise<void> {
  const baseUrl = process.env.DATABASE_URL;
  if (!baseUrl) {
    console.error('set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test)');
    process.exit(2);
  }
  // This process (load generator) and the upstream share core 0; the gateway under test has core 1.
  execFileSync('taskset', ['-a', '-pc', '0', String(process.pid)], { stdio: 'ignore' });
  if (NICE !== undefined) os.setPriority(NICE);

  const dbName = `mr_bench_${crypto.randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const dbUrl = new URL(baseUrl);
  dbUrl.pathname = `/${dbName}`;
  const children: ChildProcess[] = [];
  const { migrate } = await import('../src/store/migrate');
  const { createRoute } = await import('../src/store/routing-state');
  const pool = new pg.Pool({ connectionString: dbUrl.toString(), max: 2 });
  try {
    await migrate(pool);
    await createRoute(
      pool,
      { name: 'support-bot', blue: { target: { provider: 'openai', model: 'gpt-4o-mini' }, fallbacks: [] } },
      { actor: 'bench', reason: 'gateway benchmark' },
    );

    const upstreamPort = await freePort();
    const upstream = await start(0, ['--import', 'tsx', self, 'upstream', String(upstreamPort)], /ready/);
    children.push(upstream);
    const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
    const reports: Report[] = [];

    console.log(`gateway bench: ${seconds} s per measurement, upstream = minimal raw-net OpenAI-compatible server (core 0)`);
    console.log(
      `load average before: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (other processes on this machine skew every number)` +
        (NICE !== undefined ? `; bench processes at nice ${NICE}` : ''),
    );
    console.log('');
    reports.push(
      await measure(
        { name: 'direct (upstream)', url: upstreamUrl, model: 'gpt-4o-mini', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x' } },
        upstream.pid!,
        { saturate: false, stream: true },
      ),
    );

    const ourHeaders = { 'content-type': 'application/json', authorization: `Bearer ${GATEWAY_KEY}` };
    for (const passThrough of [true, false]) {
      const port = await freePort();
      const ours = await start(1, ['--import', 'tsx', self, 'ours', String(port), upstreamUrl, dbUrl.toString(), passThrough ? '1' : '0'], /ready/);
      children.push(ours);
      const name = passThrough ? 'model-rollout gateway' : 'model-rollout (re-serialized)';
      reports.push(
        await measure({ name, url: `http://127.0.0.1:${port}`, model: 'support-bot', headers: ourHeaders, pid: ours.pid }, upstream.pid!, {
          saturate: true,
          stream: passThrough,
        }),
      );
      await stop(ours);
    }
    const events = await pool.query<{ n: string }>('SELECT count(*) AS n FROM request_events');

    let portkeyNote = '';
    const portkeyBin = `${root}node_modules/@portkey-ai/gateway/build/start-server.js`;
    if (!fs.existsSync(portkeyBin)) portkeyNote = 'Portkey not measured: @portkey-ai/gateway is not installed (npm install)';
    else {
      const port = await freePort();
      try {
        const portkey = await start(1, [portkeyBin, `--port=${port}`, '--headless'], /Ready for connections/, { NODE_ENV: 'production' });
        children.push(portkey);
        reports.push(
          await measure(
            {
              name: 'Portkey gateway',
              url: `http://127.0.0.1:${port}`,
              model: 'gpt-4o-mini',
              headers: {
                'content-type': 'application/json',
                authorization: 'Bearer sk-bench-upstream-key',
                'x-portkey-provider': 'openai',
                'x-portkey-custom-host': `${upstreamUrl}/v1`,
              },
              pid: portkey.pid,
            },
            upstream.pid!,
            { saturate: true },
          ),
        );
        await stop(portkey);
      } catch (err) {
        portkeyNote = `Portkey not measured: ${(err as Error).message}`;
      }
    }

    print(reports, Number(events.rows[0].n));
    console.log(`load average after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    if (portkeyNote) console.log(`\n${portkeyNote}`);
  } finally {
    for (const c of children) await stop(c);
    await pool.end();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}

function print(reports: Report[], eventsWritten: number): void {
  const direct = reports[0];
  const f = (x: number | undefined, d = 2) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));
  const rows = reports.map((r) => {
    const row: Record<string, string> = { target: r.name };
    for (const rate of RATES) {
      row[`p50@${rate}`] = f(r.at[rate]?.p50);
      row[`p99@${rate}`] = f(r.at[rate]?.p99);
      row[`+p50@${rate}`] = r === direct ? '' : f(r.at[rate].p50 - direct.at[rate].p50);
      row[`+p99@${rate}`] = r === direct ? '' : f(r.at[rate].p99 - direct.at[rate].p99);
    }
    row['max rps (1 core)'] = f(r.maxRps, 0);
    row['CPU µs/req @sat'] = f(r.cpuUsPerReq, 0);
    row['CPU µs/req @1000'] = f(r.cpuUsAtRate, 0);
    row['peak RSS MB'] = f(r.rssMb, 0);
    row['core0 busy @sat'] = f(r.core0Busy, 2);
    return row;
  });
  console.log('latencies in ms (+ = added over calling the upstream directly)');
  console.table(rows);
  const ours = reports.find((r) => r.name === 'model-rollout gateway');
  const portkey = reports.find((r) => r.name === 'Portkey gateway');
  if (ours?.stream && direct.stream) {
    console.log(
      `streaming @200/s, ours: first byte p50 ${f(ours.stream.ttfbP50)} / p99 ${f(ours.stream.ttfbP99)} ms, whole stream p50 ${f(ours.stream.p50)} / p99 ${f(ours.stream.p99)} ms;` +
        ` direct: first byte p50 ${f(direct.stream.ttfbP50)} / p99 ${f(direct.stream.ttfbP99)}, whole p50 ${f(direct.stream.p50)} / p99 ${f(direct.stream.p99)}`,
    );
  }
  if (ours && portkey?.maxRps && ours.maxRps) console.log(`throughput on one core: ours / Portkey = ${(ours.maxRps / portkey.maxRps).toFixed(1)}x`);
  console.log(`request events written to Postgres by our gateway runs: ${eventsWritten}`);
}

const mode = process.argv[2];
if (mode === 'upstream') runUpstream(Number(process.argv[3]));
else if (mode === 'ours') void runOurs(Number(process.argv[3]), process.argv[4], process.argv[5], process.argv[6] !== '0');
else await main();
