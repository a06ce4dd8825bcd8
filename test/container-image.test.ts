/**
 * The container image, as far as it can be tried without a Docker engine: the Dockerfile's final file tree is
 * laid out in a folder (its `npm ci --omit=dev`, its COPY lines, its `model-rollout` link), and the worker, a
 * gateway and the setup Job's commands run from it, as the image's non-root user, with the arguments the
 * Kubernetes manifests give them. Each probe of the manifests is then asked the way the kubelet asks it.
 * So a runtime import of a dev dependency, a source folder the image leaves out, a file the user cannot read
 * or write, a flag the CLI lacks or a probe on a path or port nobody serves fails here.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ROOT } from './helpers/cli-process';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { temporalTestEnv } from './helpers/temporal';

const run = promisify(execFile);

interface Stage {
  name?: string;
  instructions: { op: string; args: string }[];
}

/** The Dockerfile's stages and their instructions (comments and continuation lines handled). */
function dockerfileStages(): Stage[] {
  const text = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const stages: Stage[] = [];
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (!line || line.startsWith('#')) continue;
    const [, op, args] = /^(\w+)\s+(.*)$/.exec(line)!;
    if (op.toUpperCase() === 'FROM') stages.push({ name: / AS (\S+)$/i.exec(args)?.[1], instructions: [] });
    stages.at(-1)!.instructions.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

type Container = {
  args: string[];
  ports?: { name: string; containerPort: number }[];
  [probe: string]: unknown;
};
type Probe = { httpGet?: { path: string; port: string | number }; tcpSocket?: { port: string | number } };

function manifestContainers(): Record<string, Container> {
  const containers: Record<string, Container> = {};
  for (const file of ['gateway.yaml', 'worker.yaml', 'setup-job.yaml'])
    for (const doc of parseAllDocuments(
      fs.readFileSync(path.join(ROOT, 'deploy/kubernetes', file), 'utf8'),
    )) {
      const object = doc.toJS();
      const pod = object.spec?.template?.spec;
      for (const c of [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])]) containers[c.name] = c;
    }
  return containers;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** One attempt of a probe, as the kubelet makes it: an HTTP GET answered 200-399, or a TCP connection. */
async function probeOnce(probe: Probe, portOf: (p: string | number) => number): Promise<boolean> {
  if (probe.httpGet) {
    const response = await fetch(`http://127.0.0.1:${portOf(probe.httpGet.port)}${probe.httpGet.path}`).catch(
      () => undefined,
    );
    return response !== undefined && response.status >= 200 && response.status < 400;
  }
  return new Promise((resolve) => {
    const socket = net.connect(portOf(probe.tcpSocket!.port), '127.0.0.1');
    socket.once('connect', () => resolve(true));
    socket.once('error', () => resolve(false));
  }).finally(() => undefined) as Promise<boolean>;
}

describe('the container image (Dockerfile) run as the Kubernetes manifests run it', () => {
  const stages = dockerfileStages();
  const final = stages.at(-1)!;
  const user = final.instructions.filter((i) => i.op === 'USER').at(-1)!.args;
  const [uid, gid] = user.split(':').map(Number);
  const env = temporalTestEnv();
  const containers = manifestContainers();
  let work: string;
  let app: string;
  let home: string;
  let db: TestDatabase;
  const children: ChildProcess[] = [];

  /** `model-rollout <args>` from the image's tree, as its user, with ports of the manifest mapped to free ones. */
  function start(args: string[], extraEnv: Record<string, string>) {
    const child = spawn('model-rollout', args, {
      cwd: app,
      env: {
        PATH: `${path.join(work, 'usr-local-bin')}:${path.dirname(process.execPath)}:/usr/bin:/bin`,
        HOME: home,
        NODE_ENV: 'production',
        DATABASE_URL: db.connectionString,
        TEMPORAL_ADDRESS: env.address,
        TEMPORAL_NAMESPACE: env.namespace,
        TEMPORAL_TASK_QUEUE: env.taskQueue,
        ...extraEnv,
      },
      ...(process.getuid?.() === 0 ? { uid, gid } : {}),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (c) => (output += c));
    child.stderr!.on('data', (c) => (output += c));
    children.push(child);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    return { child, output: () => output, exited };
  }

  /** The container's args with each of its declared ports (and the same numbers in its args) moved to a free port. */
  async function withFreePorts(container: Container) {
    const ports = new Map<number, number>();
    for (const p of container.ports ?? []) ports.set(p.containerPort, await freePort());
    const args = container.args.map((a) =>
      /^\d+$/.test(a) && ports.has(Number(a)) ? String(ports.get(Number(a))) : a,
    );
    const portOf = (p: string | number) =>
      ports.get(typeof p === 'number' ? p : container.ports!.find((d) => d.name === p)!.containerPort)!;
    return { args, portOf };
  }

  /** Asks the probe every second until it succeeds, for at most two minutes. */
  async function untilProbe(
    container: Container,
    kind: string,
    portOf: (p: string | number) => number,
    output: () => string,
  ) {
    const deadline = Date.now() + 120_000;
    while (!(await probeOnce(container[kind] as Probe, portOf))) {
      if (Date.now() > deadline) throw new Error(`${kind} never succeeded; output:\n${output()}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'model-rollout-image-'));
    app = path.join(work, 'app');
    fs.mkdirSync(app);
    // The dependencies stage: package files, then its npm command (from the cache `npm ci` filled, where it can).
    const dependencies = stages.find(
      (s) =>
        s.name ===
        final.instructions
          .find((i) => i.op === 'COPY' && i.args.startsWith('--from='))
          ?.args.split(/[= ]/)[1],
    )!;
    const install = dependencies.instructions
      .find((i) => i.op === 'RUN' && i.args.startsWith('npm '))!
      .args.split(/\s+/);
    for (const file of ['package.json', 'package-lock.json'])
      fs.copyFileSync(path.join(ROOT, file), path.join(app, file));
    await run('npm', [...install.slice(1), '--prefer-offline'], { cwd: app, maxBuffer: 1 << 24 });
    // The final stage's COPY lines from the build context.
    for (const { op, args } of final.instructions) {
      if (op !== 'COPY' || args.startsWith('--from=')) continue;
      const parts = args.split(/\s+/);
      const dest = parts.pop()!;
      for (const source of parts)
        fs.cpSync(path.join(ROOT, source), path.join(app, dest.endsWith('/') ? source : dest), {
          recursive: true,
        });
    }
    // RUN ln -s ... /usr/local/bin/model-rollout
    const link = final.instructions
      .find((i) => i.op === 'RUN' && i.args.startsWith('ln -s'))!
      .args.split(/\s+/);
    fs.mkdirSync(path.join(work, 'usr-local-bin'));
    fs.symlinkSync(link[2].replace('/app', app), path.join(work, 'usr-local-bin', path.basename(link[3])));
    // The user's home, as the node image has it (owned by the user, not writable by others).
    home = path.join(work, 'home');
    fs.mkdirSync(home, { mode: 0o755 });
    if (process.getuid?.() === 0) {
      await run('chmod', ['-R', 'a+rX', work]);
      fs.chownSync(home, uid, gid);
    }
    db = await createTestDatabase();
  }, 600_000);

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await db?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('is built in two stages, with production dependencies only, as a numeric non-root user, entry point model-rollout', () => {
    expect(stages.length).toBe(2);
    expect(uid).toBeGreaterThan(0);
    expect(final.instructions.find((i) => i.op === 'ENTRYPOINT')!.args).toBe('["model-rollout"]');
    const install = stages[0].instructions.find((i) => i.op === 'RUN')!.args;
    expect(install).toMatch(/^npm ci .*--omit=dev/);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };
    expect(fs.realpathSync(path.join(work, 'usr-local-bin', 'model-rollout'))).toBe(
      path.join(app, pkg.bin['model-rollout']),
    );
    // No package that only the dev dependencies need made it into the image's node_modules.
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const devOnly = Object.entries(lock.packages)
      .filter(([where, p]) => where && p.dev)
      .map(([where]) => where);
    expect(devOnly.length).toBeGreaterThan(50);
    expect(devOnly.filter((where) => fs.existsSync(path.join(app, where)))).toEqual([]);
  });

  it("runs the setup Job's commands: migrations, then the search attributes", async () => {
    for (const name of ['migrate', 'register-search-attributes']) {
      const job = start(containers[name].args, {});
      const code = await job.exited;
      expect(code, `${name}:\n${job.output()}`).toBe(0);
    }
  }, 120_000);

  it('starts a gateway with the manifest args, passing its readiness and liveness probes', async () => {
    const container = containers.gateway;
    const { args, portOf } = await withFreePorts(container);
    const keys = path.join(work, 'keys.json');
    fs.writeFileSync(
      keys,
      JSON.stringify({
        keys: [{ name: 'app', key: `sk-${crypto.randomBytes(8).toString('hex')}`, routes: ['*'] }],
      }),
    );
    fs.chmodSync(keys, 0o644);
    const gateway = start(args, { GATEWAY_KEYS_FILE: keys });
    await untilProbe(container, 'readinessProbe', portOf, gateway.output);
    expect(await probeOnce(container.livenessProbe as Probe, portOf)).toBe(true);
    // Clients reach the API on the Service's port; /metrics is on the admin port only.
    const api = await fetch(`http://127.0.0.1:${portOf('http')}/v1/models`);
    expect(api.status).toBe(401);
    expect(await (await fetch(`http://127.0.0.1:${portOf('admin')}/metrics`)).text()).toContain(
      'model_rollout_routing_stale 0',
    );
    gateway.child.kill('SIGTERM');
    expect(await gateway.exited).toBe(0);
  }, 180_000);

  it('starts a worker with the manifest args, passing its probes and serving its metrics', async () => {
    const container = containers.worker;
    const { args, portOf } = await withFreePorts(container);
    const worker = start(args, {});
    // Live while it starts; ready once it polls its task queue.
    await untilProbe(container, 'livenessProbe', portOf, worker.output);
    await untilProbe(container, 'readinessProbe', portOf, worker.output);
    const metrics = await (await fetch(`http://127.0.0.1:${portOf('metrics')}/metrics`)).text();
    expect(metrics).toContain(`temporal_worker_task_slots_available{namespace="${env.namespace}"`);
    expect(worker.output()).toContain(`worker running on task queue "${env.taskQueue}"`);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
  }, 300_000);
});
