import net from 'node:net';

/**
 * A TCP proxy between one process and a server, which the test can freeze: from then on nothing passes
 * in either direction (bytes are dropped, new connections are held open unanswered), as if the network
 * path died. A worker behind a frozen proxy can finish an activity's work but never report it.
 */
export interface FreezableProxy {
  /** host:port to give the process instead of the server's. */
  address: string;
  freeze(): void;
  /** Drops every connection (their frozen bytes with them) and forwards new ones again. */
  thaw(): void;
  close(): Promise<void>;
}

export async function startFreezableProxy(target: string): Promise<FreezableProxy> {
  const [host, port] = [
    target.slice(0, target.lastIndexOf(':')),
    Number(target.slice(target.lastIndexOf(':') + 1)),
  ];
  let frozen = false;
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s)).on('error', () => {});
  };
  const server = net.createServer((client) => {
    track(client);
    if (frozen) return; // accepted, never answered
    const upstream = net.connect(port, host);
    track(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('data', (d) => !frozen && upstream.write(d));
    upstream.on('data', (d) => !frozen && client.write(d));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    freeze: () => void (frozen = true),
    thaw() {
      for (const s of sockets) s.destroy();
      frozen = false;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
