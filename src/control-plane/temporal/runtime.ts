import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';

let installed = false;

/**
 * The SDK logs every worker state change at INFO; keep the terminal for the project's own progress.
 * Must run before the first worker or native connection is created, once per process.
 */
export function installTemporalRuntime(
  level: LogLevel = (process.env.TEMPORAL_LOG_LEVEL as LogLevel) ?? 'WARN',
): void {
  if (installed) return;
  installed = true;
  try {
    Runtime.install({ logger: new DefaultLogger(level) });
  } catch {
    // Already instantiated by someone else (e.g. a test environment): keep theirs.
  }
}
