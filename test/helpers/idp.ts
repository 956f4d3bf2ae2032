import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export type Fault =
  | { readonly kind: 'ok' }
  | { readonly kind: 'status'; readonly status: number }
  | { readonly kind: 'hang' }
  | { readonly kind: 'slow'; readonly ms: number }
  | { readonly kind: 'body'; readonly body: string; readonly contentType?: string }
  | { readonly kind: 'huge'; readonly bytes: number }
  | { readonly kind: 'redirect'; readonly location: string }
  | { readonly kind: 'truncate' };

interface TestKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

/**
 * A real IdP for tests: publishes a JWKS (and RFC 8414 metadata) over HTTP on 127.0.0.1, signs tokens
 * with its keys, and injects faults on demand. Counts every request it receives.
 */
export class TestIdp {
  readonly server: Server;
  readonly keys = new Map<string, TestKey>();
  published = new Set<string>();
  fault: Fault = { kind: 'ok' };
  metadataIssuer: string | undefined;
  /** The jwks_uri the metadata names (default: our own /jwks). */
  metadataJwksUri: string | undefined;
  jwksRequests = 0;
  metadataRequests = 0;
  cacheControl: string | undefined;
  #url = '';
  readonly #sockets = new Set<import('node:net').Socket>();

  private constructor() {
    this.server = createServer((req, res) => this.#handle(req, res));
    this.server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  static async start(options: { alg?: string; kid?: string } = {}): Promise<TestIdp> {
    const idp = new TestIdp();
    await new Promise<void>((resolve) => idp.server.listen(0, '127.0.0.1', resolve));
    idp.#url = `http://127.0.0.1:${(idp.server.address() as AddressInfo).port}`;
    await idp.addKey(options.kid ?? 'k1', options.alg ?? 'RS256');
    return idp;
  }

  get issuer(): string {
    return this.#url;
  }

  get jwksUri(): string {
    return `${this.#url}/jwks`;
  }

  async addKey(kid: string, alg: string, publish = true, modulusLength = 2048): Promise<TestKey> {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg.startsWith('RS') || alg.startsWith('PS') ? { modulusLength } : {}) });
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
    const key = { kid, alg, privateKey, publicJwk };
    this.keys.set(kid, key);
    if (publish) this.published.add(kid);
    return key;
  }

  jwks(): { keys: JWK[] } {
    return { keys: [...this.published].map((kid) => (this.keys.get(kid) as TestKey).publicJwk) };
  }

  /** Signs claims with one of our keys; header fields may be overridden (or made hostile) by the test. */
  async sign(claims: JWTPayload, options: { kid?: string; header?: Record<string, unknown>; key?: CryptoKey; alg?: string } = {}): Promise<string> {
    const kid = options.kid ?? 'k1';
    const key = this.keys.get(kid);
    const alg = options.alg ?? key?.alg ?? 'RS256';
    return new SignJWT(claims)
      .setProtectedHeader({ alg, kid, ...options.header } as { alg: string })
      .sign(options.key ?? (key as TestKey).privateKey);
  }

  /** A GOOD token (security-cases.md): valid for `audience`, exp now+300, scope as given. */
  token(audience: string, claims: JWTPayload = {}, options: { kid?: string; header?: Record<string, unknown> } = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return this.sign({ iss: this.issuer, aud: audience, sub: 'alice', client_id: 'test-client', scope: 'mcp:tools', iat: now, exp: now + 300, jti: `jti-${Math.random()}`, ...claims }, options);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/.well-known/oauth-authorization-server' || path === '/.well-known/openid-configuration') {
      this.metadataRequests++;
      const body = JSON.stringify({ issuer: this.metadataIssuer ?? this.issuer, jwks_uri: this.metadataJwksUri ?? this.jwksUri, token_endpoint: `${this.issuer}/token` });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
      return;
    }
    if (path !== '/jwks') {
      res.writeHead(404).end();
      return;
    }
    this.jwksRequests++;
    const fault = this.fault;
    switch (fault.kind) {
      case 'ok': {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (this.cacheControl !== undefined) headers['cache-control'] = this.cacheControl;
        res.writeHead(200, headers).end(JSON.stringify(this.jwks()));
        return;
      }
      case 'status':
        res.writeHead(fault.status, { 'content-type': 'application/json' }).end(fault.status === 204 || fault.status === 304 ? undefined : JSON.stringify(this.jwks()));
        return;
      case 'hang':
        return; // socket accepted, no bytes: closed by close()
      case 'slow': // a good answer that takes its time (a recovery fetch in flight)
        setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.jwks())), fault.ms).unref();
        return;
      case 'body':
        res.writeHead(200, { 'content-type': fault.contentType ?? 'application/json' }).end(fault.body);
        return;
      case 'huge': {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"keys":[');
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        let sent = 0;
        const pump = (): void => {
          while (sent < fault.bytes) {
            sent += chunk.length;
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end(']}');
        };
        res.on('error', () => undefined);
        pump();
        return;
      }
      case 'redirect':
        res.writeHead(302, { location: fault.location }).end();
        return;
      case 'truncate':
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '5000' });
        res.write(JSON.stringify(this.jwks()).slice(0, 100));
        setTimeout(() => res.socket?.destroy(), 20);
        return;
    }
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A host that must never be contacted (jku/x5u/redirect targets): counts what reaches it. */
export class Recorder {
  readonly server: Server;
  requests = 0;
  url = '';
  private constructor() {
    this.server = createServer((_req, res) => {
      this.requests++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}');
    });
  }
  static async start(): Promise<Recorder> {
    const r = new Recorder();
    await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
    r.url = `http://127.0.0.1:${(r.server.address() as AddressInfo).port}`;
    return r;
  }
  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
