import http from 'node:http';

/** A local stand-in for Slack: receives alert webhooks and hands each body to `onAlert`. */
export interface WebhookReceiver {
  url: string;
  received: unknown[];
  close(): Promise<void>;
}

export function startWebhookReceiver(
  onAlert: (body: { text?: string; event?: { kind?: string } }) => void,
): Promise<WebhookReceiver> {
  const received: unknown[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      try {
        const parsed = JSON.parse(body);
        received.push(parsed);
        onAlert(parsed);
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      } catch {
        res.writeHead(400).end('bad json');
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address() as { port: number };
      resolve({
        url: `http://127.0.0.1:${address.port}/alerts`,
        received,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}
