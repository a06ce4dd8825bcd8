import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';

let installed: { metricsBindAddress?: string } | undefined;

export interface TemporalRuntimeOptions {
  level?: LogLevel;
  /**
   * `host:port` for the SDK's own Prometheus exporter (`/metrics`: task slots, pollers, schedule-to-start and
   * execution latency per workflow and activity type). Named and suffixed the Prometheus way: counters end
   * in `_total`, durations are seconds with `_seconds` in the name.
   */
  metricsBindAddress?: string;
}

/**
 * The SDK logs every worker state change at INFO; keep the terminal for the project's own progress.
 * Must run before the first worker or native connection is created, once per process: the first call
 * decides (a later one asking for metrics the first did not set up throws).
 */
export function installTemporalRuntime(options: TemporalRuntimeOptions = {}): void {
  if (installed) {
    // Metrics asked for after the runtime was made without them would silently never be served.
    if (options.metricsBindAddress && options.metricsBindAddress !== installed.metricsBindAddress)
      throw new Error('the Temporal runtime was installed before its metrics listener was configured');
    return;
  }
  installed = { metricsBindAddress: options.metricsBindAddress };
  const level = options.level ?? (process.env.TEMPORAL_LOG_LEVEL as LogLevel | undefined) ?? 'WARN';
  const telemetryOptions = options.metricsBindAddress
    ? {
        metrics: {
          prometheus: {
            bindAddress: options.metricsBindAddress,
            countersTotalSuffix: true,
            unitSuffix: true,
            useSecondsForDurations: true,
          },
        },
      }
    : undefined;
  try {
    Runtime.install({ logger: new DefaultLogger(level), ...(telemetryOptions && { telemetryOptions }) });
  } catch (err) {
    // Already instantiated by someone else (e.g. a test environment): keep theirs, unless metrics were asked
    // for, which only a runtime of our own can serve.
    if (options.metricsBindAddress) throw err;
  }
}
