import net from 'node:net';

/**
 * A TCP proxy in front of a server (Postgres, in the fault tests and bench/faults.ts) that can be switched
 * between three states of the network:
 * - `up`: bytes flow both ways;
 * - `refuse`: a restart: new connections are closed at once and existing ones reset;
 * - `blackhole`: a failover or a dropped network path: new connections are accepted and never answered,
 *   and existing ones go silent (bytes in either direction are discarded, nothing errors).
 * Back `up`, connections accepted during the blackhole stay dead and existing ones carry bytes again (a
 * client whose request was lost waits for its own timeout, as it would on a real network).
 */
export type ProxyMode = 'up' | 'refuse' | 'blackhole';

export interface TcpProxy {
  readonly port: number;
  readonly mode: ProxyMode;
  set(mode: ProxyMode): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host?: string; port: number }): Promise<TcpProxy> {
  let mode: ProxyMode = 'up';
  const pairs = new Set<{ a: net.Socket; b: net.Socket }>();
  const silent = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (mode === 'refuse') return void client.destroy();
    if (mode === 'blackhole') {
      silent.add(client);
      client.on('error', () => {}).on('close', () => silent.delete(client));
      return;
    }
    const upstream = net.connect(target.port, target.host ?? '127.0.0.1');
    const pair = { a: client, b: upstream };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.on('data', (d) => mode === 'up' && upstream.write(d));
    upstream.on('data', (d) => mode === 'up' && client.write(d));
  });
  const port = await new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)),
  );
  return {
    port,
    get mode() {
      return mode;
    },
    set(next) {
      mode = next;
      if (next === 'refuse') for (const p of pairs) p.a.destroy();
    },
    async close() {
      for (const p of pairs) p.a.destroy();
      for (const s of silent) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** `connectionString` with its host and port replaced by the proxy's. */
export function viaProxy(connectionString: string, proxy: TcpProxy): string {
  const u = new URL(connectionString);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
}
