import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';
import { tracingClientInterceptors } from '../telemetry/tracing';

export const TASK_QUEUE = process.env.TEMPORAL_TASK_QUEUE ?? 'model-rollout';

export const DEFAULT_TEMPORAL_ADDRESS = '127.0.0.1:7233';

export interface ClientOptions {
  address?: string;
  namespace?: string;
}

/**
 * How to reach Temporal, read the standard way (`@temporalio/envconfig`): the profile `TEMPORAL_PROFILE`
 * (default "default") of the config file `TEMPORAL_CONFIG_FILE` (default the Temporal CLI's
 * `~/.config/temporalio/temporal.toml`), overridden by `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
 * `TEMPORAL_API_KEY`, `TEMPORAL_TLS*` (client certificate, key, server CA, server name) and
 * `TEMPORAL_GRPC_META_*`. The same settings serve the worker, the CLI, the scripts and the gateway, so
 * one environment reaches Temporal Cloud or a secured cluster from every process.
 */
export interface TemporalSettings {
  /** The configured address, or undefined when neither the environment nor a profile names one. */
  configuredAddress?: string;
  address: string;
  namespace: string;
  /** Transport options for `Connection.connect` and `NativeConnection.connect` (TLS, API key, metadata). */
  connection: {
    tls?: TLSConfig | boolean;
    apiKey?: string;
    metadata?: ConnectionOptions['metadata'];
  };
  /** For messages: how the connection is secured, never the secret itself. */
  security: string;
}

export function temporalSettings(overrides: ClientOptions = {}): TemporalSettings {
  let loaded;
  try {
    loaded = loadClientConnectConfig();
  } catch (err) {
    throw new Error(`Temporal connection settings could not be read: ${(err as Error).message}`);
  }
  const { connectionOptions: opts } = loaded;
  const configuredAddress = overrides.address ?? opts.address;
  const tls = opts.tls;
  const security = [
    tls === undefined || tls === null || tls === false
      ? 'plain'
      : typeof tls === 'object' && tls.clientCertPair
        ? 'TLS with client certificate'
        : 'TLS',
    opts.apiKey ? 'API key' : undefined,
  ]
    .filter(Boolean)
    .join(', ');
  return {
    configuredAddress,
    address: configuredAddress ?? DEFAULT_TEMPORAL_ADDRESS,
    namespace: overrides.namespace ?? loaded.namespace ?? 'default',
    connection: {
      tls: tls ?? undefined,
      apiKey: typeof opts.apiKey === 'string' ? opts.apiKey : undefined,
      metadata: opts.metadata,
    },
    security,
  };
}

/** A Temporal connection with the configured transport security; fails naming the address it tried. */
export async function connectTemporal(
  settings: TemporalSettings,
  connectTimeout = 5_000,
): Promise<Connection> {
  try {
    return await Connection.connect({ address: settings.address, ...settings.connection, connectTimeout });
  } catch (err) {
    throw new Error(
      `no Temporal server reachable at ${settings.address} (${settings.security}): ${(err as Error).message}. ` +
        `Start the stack with 'npm run dev' or set TEMPORAL_ADDRESS (and TEMPORAL_TLS_*/TEMPORAL_API_KEY for a secured server).`,
    );
  }
}

/**
 * A Temporal client for scripts and the CLI. Fails with the address it tried when no server answers,
 * rather than hanging.
 */
export async function createClient(options: ClientOptions = {}): Promise<Client> {
  const settings = temporalSettings(options);
  const connection = await connectTemporal(settings);
  // Traced (OTEL_* set), the calls carry the trace into the workflows they start, signal or update.
  const interceptors = await tracingClientInterceptors();
  return new Client({
    connection,
    namespace: settings.namespace,
    ...(interceptors ? { interceptors } : {}),
  });
}
