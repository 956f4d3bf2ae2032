import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

// The bench IdP: one ES256 key, its JWKS over HTTP on 127.0.0.1, and token minting. The same tokens go
// to every target (HAProxy verifies them with the PEM form of the same public key).

export interface BenchIdp {
  readonly issuer: string;
  readonly jwksUri: string;
  readonly publicJwk: JWK;
  readonly publicPem: string;
  mint(audience: string, scope: string, overrides?: Readonly<Record<string, unknown>>): Promise<string>;
  mintMany(count: number, audience: string, scope: string): Promise<string[]>;
  close(): Promise<void>;
}

export async function startIdp(): Promise<BenchIdp> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid: 'bench-es256', alg: 'ES256', use: 'sig' };
  const publicPem = await exportSPKI(publicKey);
  const jwks = JSON.stringify({ keys: [publicJwk] });
  const server: Server = createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/jwks') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600' }).end(jwks);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let serial = 0;
  const mint = (audience: string, scope: string, overrides: Readonly<Record<string, unknown>> = {}): Promise<string> => {
    const now = Math.floor(Date.now() / 1000);
    serial++;
    return new SignJWT({ iss: issuer, aud: audience, sub: `user-${serial % 1000}`, client_id: 'bench-client', scope, iat: now, exp: now + 3_600, jti: `bench-${process.pid}-${serial}`, ...overrides })
      .setProtectedHeader({ alg: 'ES256', kid: 'bench-es256', typ: 'at+jwt' })
      .sign(privateKey as CryptoKey);
  };
  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    publicJwk,
    publicPem,
    mint,
    async mintMany(count, audience, scope) {
      const out: string[] = [];
      while (out.length < count) {
        const batch = Math.min(512, count - out.length);
        out.push(...(await Promise.all(Array.from({ length: batch }, () => mint(audience, scope)))));
      }
      return out;
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
