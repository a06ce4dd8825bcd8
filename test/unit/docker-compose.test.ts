import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * Issue 13, finding 6: docker-compose publishes Temporal (whose frontend takes any command, unauthenticated
 * in this setup) and its UI on the host's loopback only; only the gateway faces the network.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Service {
  ports?: (string | { host_ip?: string; published?: string | number })[];
}

describe('docker-compose', () => {
  const compose = parse(fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as {
    services: Record<string, Service>;
  };

  it('publishes every port but the gateway on 127.0.0.1 only', () => {
    const published: Record<string, string[]> = {};
    for (const [name, service] of Object.entries(compose.services))
      for (const port of service.ports ?? [])
        (published[name] ??= []).push(
          typeof port === 'string' ? port : `${port.host_ip ?? ''}:${String(port.published ?? '')}`,
        );
    expect(Object.keys(published).sort()).toEqual(['gateway', 'temporal', 'temporal-ui']);
    for (const [name, ports] of Object.entries(published)) {
      if (name === 'gateway') continue;
      for (const port of ports) expect(port, `${name} publishes ${port}`).toMatch(/^127\.0\.0\.1:/);
    }
  });
});
