import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Finds the `temporal` CLI, or builds it once from the Go module proxy into a per-user cache.
 *
 * Order: TEMPORAL_CLI_PATH, then PATH, then the cache. From v1.6.0 on the CLI's go.mod carries a replace
 * directive, so `go install ...@latest` is refused; v1.5.1 is the newest that installs that way (verified:
 * it builds here in about 6 minutes with a cold module cache), and older ones are tried if it fails.
 */
export const CLI_VERSIONS = ['1.5.1', '1.5.0', '1.4.1'] as const;

export type Progress = (message: string) => void;

export function cacheRoot(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'model-rollout', 'temporal');
}

export function cachedBinaryPath(version: string): string {
  return path.join(cacheRoot(), version, 'temporal');
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Where a binary already is, without building anything. */
export function findTemporalCli():
  { path: string; source: 'TEMPORAL_CLI_PATH' | 'PATH' | 'cache' } | undefined {
  const explicit = process.env.TEMPORAL_CLI_PATH;
  if (explicit) {
    if (!isExecutable(explicit)) {
      throw new Error(`TEMPORAL_CLI_PATH=${explicit} is not an executable file`);
    }
    return { path: explicit, source: 'TEMPORAL_CLI_PATH' };
  }
  const fromPath = onPath('temporal');
  if (fromPath) return { path: fromPath, source: 'PATH' };
  for (const version of CLI_VERSIONS) {
    const cached = cachedBinaryPath(version);
    if (isExecutable(cached)) return { path: cached, source: 'cache' };
  }
  return undefined;
}

export function goAvailable(): boolean {
  return spawnSync('go', ['version'], { stdio: 'ignore' }).status === 0;
}

/**
 * Returns a runnable CLI, building it when needed. Returns undefined only when Go is absent, in which case
 * the caller falls back to the SDK's own download.
 */
export async function ensureTemporalCli(progress: Progress = () => {}): Promise<string | undefined> {
  const found = findTemporalCli();
  if (found) return found.path;
  if (!goAvailable()) return undefined;
  const failures: string[] = [];
  for (const version of CLI_VERSIONS) {
    try {
      return await buildWithLock(version, progress);
    } catch (err) {
      failures.push(`v${version}: ${(err as Error).message}`);
      progress(`building temporal CLI v${version} failed; trying the next version`);
    }
  }
  throw new Error(
    `could not build the Temporal CLI with Go (go install github.com/temporalio/cli/cmd/temporal@v{${CLI_VERSIONS.join(',')}}):\n` +
      failures.map((f) => `  - ${f}`).join('\n') +
      `\nInstall it yourself and set TEMPORAL_CLI_PATH, or point TEMPORAL_ADDRESS at a running server.`,
  );
}

/** Two processes (say, parallel test runs) must not both build into the same folder. */
async function buildWithLock(version: string, progress: Progress): Promise<string> {
  const target = cachedBinaryPath(version);
  const dir = path.dirname(target);
  fs.mkdirSync(dir, { recursive: true });
  const lock = path.join(dir, '.build.lock');
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      if (isExecutable(target)) return target;
      const stat = fs.statSync(lock, { throwIfNoEntry: false });
      // A lock older than any real build belongs to a process that died mid-build.
      if (stat && Date.now() - stat.mtimeMs > 20 * 60_000) fs.rmSync(lock, { recursive: true, force: true });
      progress(`waiting for another process building the temporal CLI v${version}...`);
      await new Promise((r) => setTimeout(r, 5_000));
    }
  }
  try {
    if (isExecutable(target)) return target;
    await goInstall(version, dir, progress);
    if (!isExecutable(target)) throw new Error(`go install finished but ${target} is missing`);
    return target;
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

function goInstall(version: string, gobin: string, progress: Progress): Promise<void> {
  const started = Date.now();
  progress(`building the Temporal CLI v${version} with Go into ${gobin} (once; takes a few minutes)...`);
  return new Promise((resolve, reject) => {
    const child = spawn('go', ['install', `github.com/temporalio/cli/cmd/temporal@v${version}`], {
      env: { ...process.env, GOBIN: gobin, GOFLAGS: process.env.GOFLAGS ?? '-mod=mod' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let tail = '';
    let modules = 0;
    let lastDownloadAt = Date.now();
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      tail = (tail + text).slice(-4000);
      const downloads = (text.match(/go: downloading/g) ?? []).length;
      if (downloads) lastDownloadAt = Date.now();
      modules += downloads;
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const ticker = setInterval(() => {
      const secs = Math.round((Date.now() - started) / 1000);
      const stage = Date.now() - lastDownloadAt > 10_000 ? 'compiling' : 'downloading modules';
      progress(
        `  still building temporal CLI v${version}: ${secs}s, ${modules} modules downloaded, ${stage}`,
      );
    }, 15_000);
    child.on('error', (err) => {
      clearInterval(ticker);
      reject(err);
    });
    child.on('exit', (code) => {
      clearInterval(ticker);
      const secs = Math.round((Date.now() - started) / 1000);
      if (code === 0) {
        progress(`built temporal CLI v${version} in ${secs}s`);
        resolve();
      } else {
        reject(
          new Error(
            `go install exited with ${code} after ${secs}s: ${tail.trim().split('\n').slice(-5).join(' | ')}`,
          ),
        );
      }
    });
  });
}
