import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { temporalSettings, type TemporalSettings } from './connection';
import { ensureTemporalCli, type Progress } from './cli-binary';
import { devServerSearchAttributeFlags, SEARCH_ATTRIBUTES } from './search-attributes';
import { logger } from '../../logger';

/**
 * Temporal for this process: the configured server when `TEMPORAL_ADDRESS` (or the `TEMPORAL_PROFILE`
 * config profile) names one, reached with its TLS/API-key settings, otherwise a `temporal server
 * start-dev` that we start (SQLite file, UI on, search attributes registered) and stop.
 */
export interface TemporalServer {
  address: string;
  namespace: string;
  /** Web UI base URL when we know it (our own dev server, or TEMPORAL_UI_URL). */
  uiUrl?: string;
  /** The CLI binary used (for `temporal workflow ...` commands). */
  cliPath?: string;
  /** True when this process started the server and `stop()` will end it. */
  managed: boolean;
  stop(): Promise<void>;
}

export interface StartTemporalOptions {
  /** Folder for the SQLite file and the pid file (default `.data/temporal`). */
  dataDir?: string;
  /** Keep no state on disk (tests). */
  ephemeral?: boolean;
  port?: number;
  uiPort?: number;
  namespace?: string;
  /** More namespaces to create at start (tests isolate workflow ids this way). */
  extraNamespaces?: string[];
  /** `--dynamic-config-value` entries, e.g. { 'limit.historyCount.suggestContinueAsNew': 200 }. */
  dynamicConfig?: Record<string, unknown>;
  progress?: Progress;
  readyTimeoutMs?: number;
}

export async function startTemporal(options: StartTemporalOptions = {}): Promise<TemporalServer> {
  const settings = temporalSettings({ namespace: options.namespace });
  const { namespace } = settings;
  const progress = options.progress ?? ((m: string) => logger.info(m));
  const external = settings.configuredAddress;
  if (external) {
    await waitForFrontend(external, namespace, options.readyTimeoutMs ?? 15_000, () => undefined, settings);
    await registerSearchAttributes(settings);
    return {
      address: external,
      namespace,
      uiUrl: process.env.TEMPORAL_UI_URL,
      managed: false,
      stop: async () => {},
    };
  }
  const cli = await ensureTemporalCli(progress);
  if (!cli) return startWithSdkDownload(namespace, options, progress);
  return startDevServer(cli, namespace, options, progress);
}

async function startDevServer(
  cli: string,
  namespace: string,
  options: StartTemporalOptions,
  progress: Progress,
): Promise<TemporalServer> {
  const port = options.port ?? 7233;
  const uiPort = options.uiPort ?? port + 1000;
  const host = '127.0.0.1';
  const dataDir = path.resolve(options.dataDir ?? path.join(process.cwd(), '.data', 'temporal'));
  fs.mkdirSync(dataDir, { recursive: true });
  const pidFile = path.join(dataDir, `dev-server-${port}.pid`);
  await refuseBusyPorts(host, port, uiPort, pidFile);

  const args = ['server', 'start-dev', '--ip', host, '--port', String(port), '--ui-port', String(uiPort)];
  args.push('--namespace', namespace, '--log-level', 'warn', ...devServerSearchAttributeFlags());
  for (const extra of options.extraNamespaces ?? []) args.push('--namespace', extra);
  if (!options.ephemeral) args.push('--db-filename', path.join(dataDir, 'temporal.sqlite'));
  for (const [key, value] of Object.entries(options.dynamicConfig ?? {})) {
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  }
  progress(`starting Temporal dev server on ${host}:${port} (UI http://${host}:${uiPort})`);
  const child = spawn(cli, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: false });
  fs.writeFileSync(pidFile, String(child.pid));
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));

  const address = `${host}:${port}`;
  try {
    await waitForFrontend(address, namespace, options.readyTimeoutMs ?? 60_000, () =>
      exited !== undefined ? `the dev server exited with code ${exited}: ${lastLines(output)}` : undefined,
    );
    await waitForHttp(`http://${host}:${uiPort}/`, 30_000);
  } catch (err) {
    await stopChild(child);
    fs.rmSync(pidFile, { force: true });
    throw err;
  }
  progress(`Temporal dev server ready at ${address}`);
  return {
    address,
    namespace,
    uiUrl: `http://${host}:${uiPort}`,
    cliPath: cli,
    managed: true,
    async stop() {
      await stopChild(child);
      fs.rmSync(pidFile, { force: true });
    },
  };
}

/** Where Go is missing: the SDK downloads its own CLI build (needs internet access). */
async function startWithSdkDownload(
  namespace: string,
  options: StartTemporalOptions,
  progress: Progress,
): Promise<TemporalServer> {
  progress(
    'Go is not installed: falling back to the Temporal SDK download of the dev server (needs internet)',
  );
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      namespace,
      ip: '127.0.0.1',
      port: options.port,
      ui: true,
      uiPort: options.uiPort,
      dbFilename: options.ephemeral
        ? undefined
        : path.resolve(options.dataDir ?? '.data/temporal', 'temporal.sqlite'),
      searchAttributes: SEARCH_ATTRIBUTES,
      extraArgs: Object.entries(options.dynamicConfig ?? {}).flatMap(([k, v]) => [
        '--dynamic-config-value',
        `${k}=${JSON.stringify(v)}`,
      ]),
    },
  });
  return {
    address: env.address,
    namespace,
    uiUrl: options.uiPort ? `http://127.0.0.1:${options.uiPort}` : undefined,
    managed: true,
    stop: () => env.teardown(),
  };
}

async function refuseBusyPorts(host: string, port: number, uiPort: number, pidFile: string): Promise<void> {
  const stalePid = readPid(pidFile);
  for (const p of [port, uiPort]) {
    if (await portFree(host, p)) continue;
    const hint =
      stalePid && processAlive(stalePid)
        ? `a dev server from an earlier run is still running (pid ${stalePid}); stop it with 'kill ${stalePid}'`
        : `another program is listening there`;
    throw new Error(
      `cannot start the Temporal dev server: port ${host}:${p} is in use (${hint}). ` +
        `To use a server that is already running, set TEMPORAL_ADDRESS=${host}:${port}.`,
    );
  }
  if (stalePid) fs.rmSync(pidFile, { force: true });
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** Polls the frontend until it answers for our namespace; `failed()` reports an early exit. */
export async function waitForFrontend(
  address: string,
  namespace: string,
  timeoutMs: number,
  failed: () => string | undefined,
  /** TLS/API key of a configured server (none for the dev server we start). */
  transport: Partial<Pick<TemporalSettings, 'connection'>> = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    const why = failed();
    if (why) throw new Error(why);
    try {
      const connection = await Connection.connect({
        address,
        ...transport.connection,
        connectTimeout: 2_000,
      });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      lastError = (err as Error).message;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`Temporal at ${address} did not become ready within ${timeoutMs} ms: ${lastError}`);
}

async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`Temporal UI at ${url} did not answer within ${timeoutMs} ms`);
}

/** For servers we did not start: add our search attributes, tolerating ones that exist already. */
export async function registerSearchAttributes(settings: TemporalSettings): Promise<void> {
  const { namespace } = settings;
  const connection = await Connection.connect({ address: settings.address, ...settings.connection });
  try {
    const existing = await connection.operatorService.listSearchAttributes({ namespace });
    const have = new Set(Object.keys(existing.customAttributes ?? {}));
    const missing = SEARCH_ATTRIBUTES.filter((key) => !have.has(key.name));
    if (missing.length === 0) return;
    const { temporal } = await import('@temporalio/proto');
    const types: Record<string, number> = {
      KEYWORD: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
      INT: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT,
    };
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((key) => [key.name, types[key.type]])),
    });
  } finally {
    await connection.close();
  }
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-8).join('\n');
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
