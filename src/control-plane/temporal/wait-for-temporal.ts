import net from 'node:net';
import { Connection } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { FatalStartupError, describeError, waitUntilReady, type Readiness } from '../../startup/wait';
import type { TemporalSettings } from './connection';

/**
 * Waits until the Temporal frontend at `settings.address` answers for the namespace, then returns a client
 * connection (and, for a worker, a native one). A worker started while the server restarts, or before it
 * exists, waits and goes to work when it comes, instead of exiting. Refused credentials end the wait; a
 * namespace not created yet (a setup job still running) is waited for.
 */
export async function waitForTemporal(
  settings: TemporalSettings,
  options: {
    progress: (line: string) => void;
    readiness?: Readiness;
    signal?: AbortSignal;
    /** Also open the worker's native connection (the same settings). */
    native?: boolean;
  },
): Promise<{ connection: Connection; native?: NativeConnection }> {
  const { address, namespace } = settings;
  return waitUntilReady({
    name: 'temporal',
    what: `Temporal at ${address}`,
    progress: options.progress,
    readiness: options.readiness,
    signal: options.signal,
    attempt: async () => {
      // The client's own error for a dead address is "Failed to connect before the deadline", after 5 s:
      // a plain TCP connect says at once whether anything listens, and why not.
      await tcpReachable(address);
      // The native connection (a worker's) fails at once with the transport's own words, which tell a
      // server still starting from a certificate that will never be accepted.
      let native: NativeConnection | undefined;
      if (options.native) {
        const { NativeConnection } = await import('@temporalio/worker');
        try {
          native = await NativeConnection.connect({ address, ...settings.connection });
        } catch (err) {
          throw refusedForGood(err) ? fatal(settings, err) : err;
        }
      }
      let connection: Connection | undefined;
      try {
        connection = await Connection.connect({ address, ...settings.connection, connectTimeout: 5_000 });
        await connection.workflowService.describeNamespace({ namespace });
        return { connection, native };
      } catch (err) {
        await connection?.close().catch(() => {});
        await native?.close().catch(() => {});
        throw grpcCode(err) === GRPC_UNAUTHENTICATED || grpcCode(err) === GRPC_PERMISSION_DENIED
          ? fatal(settings, err)
          : err;
      }
    },
    describe: (err) =>
      grpcCode(err) === GRPC_NOT_FOUND ? `namespace "${namespace}" not found (yet)` : describeError(err),
  });
}

/** A TLS handshake that failed on a certificate, or credentials refused: waiting cannot cure these. */
function refusedForGood(err: unknown): boolean {
  return /certificate|UnknownIssuer|BadSignature|NotValidForName|handshake|alert/i.test(
    String((err as Error)?.message ?? err),
  );
}

function fatal(settings: TemporalSettings, err: unknown): FatalStartupError {
  return new FatalStartupError(
    `no Temporal server reachable at ${settings.address} (${settings.security}): ${(err as Error).message}. ` +
      `Check TEMPORAL_ADDRESS and its TLS settings (TEMPORAL_TLS_*, TEMPORAL_API_KEY).`,
  );
}

const GRPC_PERMISSION_DENIED = 7;
const GRPC_NOT_FOUND = 5;
const GRPC_UNAUTHENTICATED = 16;

function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Resolves when a TCP connection to `host:port` opens (then closes it); rejects with the socket's error. */
function tcpReachable(address: string, timeoutMs = 5_000): Promise<void> {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  const port = Number(address.slice(at + 1));
  if (at < 1 || !Number.isInteger(port)) {
    return Promise.reject(
      new FatalStartupError(`Temporal address "${address}" is not host:port (TEMPORAL_ADDRESS)`),
    );
  }
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      reject(new Error(`no TCP answer within ${timeoutMs} ms (timeout)`));
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}
