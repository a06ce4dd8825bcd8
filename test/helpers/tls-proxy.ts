import net from 'node:net';
import tls from 'node:tls';
import forge from 'node-forge';

/** PEM strings of a certificate and its private key. */
export interface KeyPair {
  cert: string;
  key: string;
}

let serial = 1;

/** A test certificate authority, and certificates it signs (RSA 2048, valid for a day). */
export function createCa(name: string) {
  const keys = forge.pki.rsa.generateKeyPair(2048);
  const cert = baseCert(keys.publicKey, name);
  cert.setIssuer(cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  const ca: KeyPair = {
    cert: forge.pki.certificateToPem(cert),
    key: forge.pki.privateKeyToPem(keys.privateKey),
  };

  /** A leaf certificate signed by this CA: a server one (for localhost and 127.0.0.1) or a client one. */
  function issue(commonName: string, usage: 'server' | 'client'): KeyPair {
    const leafKeys = forge.pki.rsa.generateKeyPair(2048);
    const leaf = baseCert(leafKeys.publicKey, commonName);
    leaf.setIssuer(cert.subject.attributes);
    leaf.setExtensions([
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: usage === 'server', clientAuth: usage === 'client' },
      ...(usage === 'server'
        ? [
            {
              name: 'subjectAltName',
              altNames: [
                { type: 2, value: 'localhost' },
                { type: 7, ip: '127.0.0.1' },
              ],
            },
          ]
        : []),
    ]);
    leaf.sign(keys.privateKey, forge.md.sha256.create());
    return {
      cert: forge.pki.certificateToPem(leaf),
      key: forge.pki.privateKeyToPem(leafKeys.privateKey),
    };
  }
  return { ...ca, issue };
}

function baseCert(publicKey: forge.pki.PublicKey, commonName: string): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = (serial++).toString(16).padStart(2, '0');
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  return cert;
}

export interface TlsProxy {
  address: string;
  /** Common names of the client certificates of the connections that were let through. */
  clients: string[];
  /** TLS handshakes that failed (no or untrusted client certificate, or the client refused ours). */
  refused: number;
  close(): Promise<void>;
}

/**
 * A TLS-terminating TCP proxy in front of a plaintext server (the Temporal dev server has no TLS of its
 * own): presents `server`, requires a client certificate signed by `clientCa`, speaks HTTP/2 (gRPC) via
 * ALPN, and pipes the decrypted bytes to `target`.
 */
export async function startTlsProxy(options: {
  target: string;
  server: KeyPair;
  clientCa: string;
}): Promise<TlsProxy> {
  const [host, port] = splitHostPort(options.target);
  const sockets = new Set<net.Socket>();
  const state = { clients: [] as string[], refused: 0 };
  const proxy = tls.createServer(
    {
      key: options.server.key,
      cert: options.server.cert,
      ca: [options.clientCa],
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (socket) => {
      state.clients.push(String(socket.getPeerCertificate().subject?.CN ?? ''));
      const upstream = net.connect(port, host);
      sockets.add(socket).add(upstream);
      socket.pipe(upstream).pipe(socket);
      const end = () => {
        socket.destroy();
        upstream.destroy();
        sockets.delete(socket);
        sockets.delete(upstream);
      };
      socket.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    },
  );
  proxy.on('tlsClientError', () => state.refused++);
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port: listening } = proxy.address() as net.AddressInfo;
  return {
    address: `127.0.0.1:${listening}`,
    get clients() {
      return state.clients;
    },
    get refused() {
      return state.refused;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}

function splitHostPort(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), Number(address.slice(i + 1))];
}
