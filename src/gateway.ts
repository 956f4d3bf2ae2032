import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/compile.ts';
import { IssuerKeys } from './auth/keys.ts';
import { TokenCache } from './auth/token-cache.ts';
import { createAuthenticator } from './auth/verify.ts';
import { createIntrospector } from './auth/introspect.ts';
import { createAssertionMinter } from './identity/assertion.ts';
import { loadGatewayKeys } from './identity/keys.ts';
import { createSessionBinder } from './identity/session.ts';
import { createLogger, type Logger } from './observe/log.ts';
import type { RequestRecord } from './observe/record.ts';
import { createPipeline } from './pipeline.ts';
import { createPools } from './proxy/forward.ts';
import { createRouter } from './route/match.ts';
import { createWellKnown } from './route/well-known.ts';

export interface GatewayOptions {
  readonly logger?: Logger;
  /** Injected clock in ms (STYLE rule 11); defaults to Date.now. */
  readonly now?: () => number;
}

export interface Gateway {
  readonly config: Config;
  /** Binds the traffic and admin listeners; resolves with the bound addresses. */
  listen(): Promise<{ readonly traffic: AddressInfo; readonly admin: AddressInfo }>;
  ready(): boolean;
  close(): Promise<void>;
  /** For tests and drills: refresh/inspect one issuer's keys. */
  readonly issuerKeys: ReadonlyMap<string, IssuerKeys>;
}

/** Builds everything once from a validated Config (STYLE rule 2); requests only run closures. */
export async function createGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const now = options.now ?? Date.now;
  const logger = options.logger ?? createLogger();
  const gatewayKeys = await loadGatewayKeys(config.identity.signingKeyFile, config.file);
  const cache = new TokenCache(10_000);
  const issuerKeys = new Map<string, IssuerKeys>();
  for (const issuer of config.issuers) {
    if (issuer.introspection !== undefined) continue; // validated at its introspection endpoint, no JWKS
    issuerKeys.set(issuer.name, new IssuerKeys(issuer, {
      now,
      onKeysRemoved: (name, kids) => cache.dropKeys(name, kids),
      onFetch: (name, result) => {
        if (result !== 'ok') logger.warn({ event: 'jwks_fetch_failed', issuer: name, result }, 'signing key fetch failed');
      },
    }));
  }
  const pools = createPools(config.upstreams);
  const handle = createPipeline({
    config,
    router: createRouter(config.upstreams),
    wellKnown: createWellKnown(config, gatewayKeys.publicJwks),
    authenticate: createAuthenticator({ keys: issuerKeys, cache, introspect: createIntrospector(now), now }),
    sessions: createSessionBinder(gatewayKeys.sessionSecrets),
    mintAssertion: createAssertionMinter({ keys: gatewayKeys, issuer: config.publicUrl.origin, ttlSeconds: config.identity.ttlSeconds, now }),
    pools,
    now,
    onRecord: (record) => audit(logger, record, now),
    onStreamExpired: (record) => logger.info({ event: 'stream_closed', requestId: record.requestId, upstream: record.upstream, sub: record.sub, clientId: record.clientId, reason: 'token_expired' }, 'stream ended: token expired'),
  });

  const traffic = createServer({
    // Smuggling defences (SC-110/111): never the lenient parser; bounded header and request times (SC-156).
    insecureHTTPParser: false,
    maxHeaderSize: 16 * 1024,
    headersTimeout: config.limits.headersTimeoutMs,
    requestTimeout: config.limits.requestTimeoutMs,
    requireHostHeader: true,
  }, (req, res) => void handle(req, res));
  // Expect: 100-continue is answered by the pipeline only after authorization (SC-109).
  traffic.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => void handle(req, res));
  // CONNECT and upgrades are not proxied (SC-127).
  traffic.on('connect', (_req, socket) => socket.end('HTTP/1.1 405 Method Not Allowed\r\nconnection: close\r\ncontent-length: 0\r\n\r\n'));
  traffic.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n'));
  traffic.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });

  const ready = (): boolean => [...issuerKeys.values()].every((k) => k.status().usable);
  const admin = createServer((req, res) => {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path === '/healthz') return json(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      const issuers = [...issuerKeys.values()].map((k) => k.status());
      return json(res, ready() ? 200 : 503, { ready: ready(), issuers: issuers.map(({ lastError: _e, ...s }) => s) });
    }
    return json(res, 404, { error: 'not_found' });
  });

  return {
    config,
    issuerKeys,
    ready,
    async listen() {
      // Key fetches start now; a failing IdP leaves the gateway up but not ready, refusing requests.
      await Promise.all([...issuerKeys.values()].map((k) => k.start()));
      const t = await listenOn(traffic, config.listen.host, config.listen.port);
      const a = await listenOn(admin, config.admin.host, config.admin.port);
      return { traffic: t, admin: a };
    },
    async close() {
      for (const k of issuerKeys.values()) k.stop();
      traffic.closeAllConnections();
      admin.closeAllConnections();
      await Promise.all([closeServer(traffic), closeServer(admin)]);
      await pools.close();
    },
  };
}

function audit(logger: Logger, r: RequestRecord, now: () => number): void {
  logger.info({
    event: 'decision',
    requestId: r.requestId,
    upstream: r.upstream,
    httpMethod: r.httpMethod,
    outcome: r.outcome,
    reason: r.reason,
    status: r.status,
    iss: r.iss,
    sub: r.sub,
    clientId: r.clientId,
    rpcMethod: r.rpcMethod,
    tool: r.tool,
    durationMs: now() - r.startedAt,
    upstreamMs: r.upstreamMs,
  }, 'request');
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

function listenOn(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}
