import { Client, Connection } from '@temporalio/client';

export const TASK_QUEUE = process.env.TEMPORAL_TASK_QUEUE ?? 'model-rollout';

export interface ClientOptions {
  address?: string;
  namespace?: string;
}

/**
 * A Temporal client for scripts and the CLI. Fails with the address it tried when no server answers,
 * rather than hanging.
 */
export async function createClient(options: ClientOptions = {}): Promise<Client> {
  const address = options.address ?? process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
  const namespace = options.namespace ?? process.env.TEMPORAL_NAMESPACE ?? 'default';
  let connection: Connection;
  try {
    connection = await Connection.connect({ address, connectTimeout: 5_000 });
  } catch (err) {
    throw new Error(
      `no Temporal server reachable at ${address} (${(err as Error).message}). ` +
        `Start the stack with 'npm run dev' or set TEMPORAL_ADDRESS.`,
    );
  }
  return new Client({ connection, namespace });
}
