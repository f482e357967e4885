// What the browser tests share: a free loopback port, and a fresh signing key for a test
// identity provider.

import crypto from 'node:crypto';
import net from 'node:net';
import { once } from 'node:events';

/** A port free on 127.0.0.1 at the time of asking. */
export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

/** A fresh ES256 signing key as a private JWK. */
export function signingKey() {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: 'ES256', use: 'sig' };
}
