/**
 * Temporal through TLS with client certificates, configured only through the standard environment
 * variables (`TEMPORAL_ADDRESS`, `TEMPORAL_TLS_CLIENT_CERT_PATH`, `TEMPORAL_TLS_CLIENT_KEY_PATH`,
 * `TEMPORAL_TLS_SERVER_CA_CERT_PATH`): the real CLI binary and a real worker process reach the dev server
 * through a TLS-terminating proxy that demands a client certificate from the test CA, and both refuse a
 * server whose certificate another CA signed.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { temporalTestEnv } from './helpers/temporal';
import { createCa, startTlsProxy, type TlsProxy } from './helpers/tls-proxy';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'model-rollout.js');

const env = temporalTestEnv();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-tls-'));
let db: TestDatabase;
let proxy: TlsProxy;
let rogue: TlsProxy;

const file = (name: string, text: string) => {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, text, { mode: 0o600 });
  return p;
};

let tlsEnv: Record<string, string>;

beforeAll(async () => {
  db = await createTestDatabase();
  const ca = createCa('model-rollout test CA');
  const server = ca.issue('temporal-frontend', 'server');
  const client = ca.issue('rollout-worker', 'client');
  proxy = await startTlsProxy({ target: env.address, server, clientCa: ca.cert });
  // Same client CA, so only the server's certificate is wrong: signed by a CA the client does not trust.
  const otherCa = createCa('somebody else');
  rogue = await startTlsProxy({
    target: env.address,
    server: otherCa.issue('temporal-frontend', 'server'),
    clientCa: ca.cert,
  });
  tlsEnv = {
    TEMPORAL_NAMESPACE: env.namespace,
    TEMPORAL_TASK_QUEUE: env.taskQueue,
    TEMPORAL_TLS_CLIENT_CERT_PATH: file('client.pem', client.cert),
    TEMPORAL_TLS_CLIENT_KEY_PATH: file('client.key', client.key),
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: file('ca.pem', ca.cert),
    // No profile file from the machine running the tests.
    TEMPORAL_CONFIG_FILE: path.join(tmp, 'no-such-config.toml'),
    DATABASE_URL: db.connectionString,
    NO_COLOR: '1',
  };
}, 60_000);

afterAll(async () => {
  await proxy?.close();
  await rogue?.close();
  await db?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Runs the real CLI with the TLS environment; an `undefined` in `extra` removes that variable. */
function run(args: string[], extra: Record<string, string | undefined>, until?: RegExp) {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...tlsEnv, ...extra };
  for (const [k, v] of Object.entries(childEnv)) if (v === undefined) delete childEnv[k];
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: childEnv });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
  const ready = until
    ? new Promise<void>((resolve, reject) => {
        child.stdout.on('data', () => until.test(stdout) && resolve());
        void exited.then((r) =>
          reject(new Error(`exited ${r.code} before ${until}:\n${r.stdout}\n${r.stderr}`)),
        );
      })
    : Promise.resolve();
  return { child, exited, ready };
}

describe('Temporal over TLS with client certificates from the standard environment variables', () => {
  it('the CLI and a worker process connect through TLS; a workflow runs end to end', async () => {
    const worker = run(['worker'], { TEMPORAL_ADDRESS: proxy.address }, /worker running/);
    try {
      await worker.ready;
      const started = run(['list'], { TEMPORAL_ADDRESS: proxy.address });
      const listed = await started.exited;
      expect(listed.stderr).not.toMatch(/error/i);
      expect(listed.code).toBe(0);

      // A workflow the TLS worker must run: its result proves the worker polls through the proxy.
      const client = await env.client();
      try {
        const result = await client.workflow.execute('routeProbeWorkflow', {
          taskQueue: env.taskQueue,
          workflowId: `tls-probe-${Date.now()}`,
          args: ['no-such-route'],
          workflowExecutionTimeout: '60s',
        });
        expect(result).toEqual({ route: 'no-such-route', exists: false, version: null });
      } finally {
        await client.connection.close();
      }
      expect(worker.child.exitCode).toBeNull();
    } finally {
      worker.child.kill('SIGINT');
      await worker.exited;
    }
    // Every connection the proxy let through carried the test client certificate.
    expect(proxy.clients.length).toBeGreaterThanOrEqual(2);
    expect(new Set(proxy.clients)).toEqual(new Set(['rollout-worker']));
  }, 120_000);

  it('a client without a certificate is refused by the server', async () => {
    const before = proxy.refused;
    const r = await run(['list'], {
      TEMPORAL_ADDRESS: proxy.address,
      TEMPORAL_TLS_CLIENT_CERT_PATH: undefined,
      TEMPORAL_TLS_CLIENT_KEY_PATH: undefined,
    }).exited;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`no Temporal server reachable at ${proxy.address} (TLS)`);
    expect(proxy.refused).toBeGreaterThan(before);
  }, 60_000);

  it('the CLI and the worker refuse a server whose certificate the CA did not sign', async () => {
    const cli = await run(['list'], { TEMPORAL_ADDRESS: rogue.address }).exited;
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toContain(
      `no Temporal server reachable at ${rogue.address} (TLS with client certificate)`,
    );
    const worker = await run(['worker'], { TEMPORAL_ADDRESS: rogue.address }).exited;
    expect(worker.code).not.toBe(0);
    expect(worker.stderr).toContain(`no Temporal server reachable at ${rogue.address}`);
    expect(worker.stdout).not.toContain('worker running');
    // The handshake failed on the client's side: nothing ever reached the dev server through the rogue.
    expect(rogue.clients).toEqual([]);
  }, 60_000);
});
