import { readFileSync, watchFile, unwatchFile } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/compile.ts';
import { ConfigError } from './config/errors.ts';
import { IssuerKeys } from './auth/keys.ts';
import { startKeys } from './auth/gateway-key.ts';
import { TokenCache } from './auth/token-cache.ts';
import { createAuthenticator } from './auth/verify.ts';
import { createIntrospector } from './auth/introspect.ts';
import { createAssertionMinter } from './identity/assertion.ts';
import { loadGatewayKeys } from './identity/keys.ts';
import { createSessionBinder } from './identity/session.ts';
import { createLogger, type Logger } from './observe/log.ts';
import { createMetrics, type Metrics } from './observe/metrics.ts';
import { auditRecord } from './observe/audit.ts';
import { createPipeline } from './pipeline.ts';
import { createPools, type Pools } from './proxy/forward.ts';
import { StreamRegistry } from './proxy/stream.ts';
import { createRouter } from './route/match.ts';
import { createWellKnown } from './route/well-known.ts';

export interface GatewayOptions {
  readonly logger?: Logger;
  /** Injected clock in ms (STYLE rule 11); defaults to Date.now. */
  readonly now?: () => number;
}

export interface Gateway {
  /** The configuration currently serving (swapped whole by reload). */
  readonly config: Config;
  /** Binds the traffic and admin listeners; resolves with the bound addresses. */
  listen(): Promise<{ readonly traffic: AddressInfo; readonly admin: AddressInfo }>;
  ready(): boolean;
  /** Loads (validates) and swaps in a new configuration atomically; a failure keeps the old one serving. */
  reload(load: () => Config): Promise<void>;
  /** SIGTERM: stop accepting, finish in-flight requests, end SSE streams with a final event. */
  shutdown(graceMs?: number): Promise<void>;
  close(): Promise<void>;
  readonly metrics: Metrics;
  /** For tests and drills: the current issuers' key caches. */
  readonly issuerKeys: ReadonlyMap<string, IssuerKeys>;
}

/** Everything built from one Config; requests take the state current when they arrive. */
interface State {
  readonly config: Config;
  readonly handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  readonly issuerKeys: Map<string, IssuerKeys>;
  readonly pools: Pools;
  readonly cache: TokenCache;
}

const SHUTDOWN_EVENT = 'event: shutdown\nretry: 1000\ndata: {"reason":"gateway shutting down"}\n\n';

/** Builds everything once from a validated Config (STYLE rule 2); requests only run closures. */
export async function createGateway(initial: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const now = options.now ?? Date.now;
  const logger = options.logger ?? createLogger();
  let state: State | undefined;
  const metrics = createMetrics({
    keys: () => [...(state?.issuerKeys.values() ?? [])].map((k) => k.status()),
    tokenCache: () => ({ hits: state?.cache.hits ?? 0, misses: state?.cache.misses ?? 0 }),
  });
  const streams = new StreamRegistry((upstream, delta) => (delta === 1 ? metrics.streamOpened(upstream) : metrics.streamClosed(upstream)));
  const lastFetch = new Map<string, string>();

  async function build(config: Config, previous: State | undefined): Promise<State> {
    const gatewayKeys = await loadGatewayKeys(config.identity.signingKeyFile, config.file, config.identity.signingKeyFileLine);
    const cache = new TokenCache(config.limits.tokenCacheEntries);
    const issuerKeys = new Map<string, IssuerKeys>();
    for (const issuer of config.issuers) {
      if (issuer.introspection !== undefined) continue; // validated at its introspection endpoint, no JWKS
      // An unchanged issuer keeps its key cache across a reload; a changed one starts afresh.
      const old = previous?.issuerKeys.get(issuer.name);
      const same = old !== undefined && old.refuses(gatewayKeys.thumbprints) && JSON.stringify(previous?.config.issuers.find((i) => i.name === issuer.name)) === JSON.stringify(issuer);
      issuerKeys.set(issuer.name, same ? (old as IssuerKeys) : new IssuerKeys(issuer, {
        now,
        onKeysRemoved: (name, kids) => state?.cache.dropKeys(name, kids),
        gatewayThumbprints: gatewayKeys.thumbprints,
        onGatewayKey: (name, kids) => logger.error({ event: 'jwks_gateway_key', issuer: name, kids }, "issuer key set publishes the gateway's own signing key; those keys are dropped"),
        onFetch: (name, result) => {
          metrics.jwksFetch(name, result);
          // Logged on change only: an outage is one line, not one per retry.
          if (lastFetch.get(name) !== result) logger[result === 'ok' ? 'info' : 'warn']({ event: 'jwks_fetch', issuer: name, result }, result === 'ok' ? 'signing keys fetched' : 'signing key fetch failed');
          lastFetch.set(name, result);
        },
      }));
    }
    let pools: Pools;
    try {
      pools = createPools(config.upstreams, (path) => readFileSync(path));
    } catch (err) {
      throw new ConfigError([{ file: config.file, line: undefined, key: 'upstreams.tls', message: `cannot read a TLS file (${(err as NodeJS.ErrnoException).code ?? 'error'})` }]);
    }
    const handle = createPipeline({
      config,
      router: createRouter(config.upstreams),
      wellKnown: createWellKnown(config, gatewayKeys.publicJwks),
      authenticate: createAuthenticator({ keys: issuerKeys, cache, introspect: createIntrospector(now, (name, result) => metrics.jwksFetch(name, `introspection_${result}`)), now }),
      sessions: createSessionBinder(gatewayKeys.sessionSecrets),
      mintAssertion: createAssertionMinter({ keys: gatewayKeys, issuer: config.publicUrl.origin, ttlSeconds: config.identity.ttlSeconds, now, maxEntries: config.limits.tokenCacheEntries }),
      pools,
      now,
      streams,
      onRecord: (record) => {
        auditRecord(logger, record, now);
        metrics.observe(record, record.gatewaySeconds, record.upstreamMs === undefined ? undefined : record.upstreamMs / 1000);
      },
      onStreamExpired: (record) => logger.info({ event: 'stream_closed', requestId: record.requestId, upstream: record.upstream, sub: record.sub, clientId: record.clientId, reason: 'token_expired' }, 'stream ended: token expired'),
    });
    return { config, handle, issuerKeys, pools, cache };
  }

  state = await build(initial, undefined);
  let inflight = 0;
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    inflight++;
    res.on('close', () => inflight--);
    void (state as State).handle(req, res);
  };

  const tls = initial.listen.tls;
  const serverOptions = {
    // Smuggling defences (SC-110/111): never the lenient parser; bounded header and request times (SC-156).
    insecureHTTPParser: false,
    maxHeaderSize: 16 * 1024,
    headersTimeout: initial.limits.headersTimeoutMs,
    requestTimeout: initial.limits.requestTimeoutMs,
    requireHostHeader: true,
    // Node checks header and request timeouts only this often (default 30 s): keep it at the timeout's scale.
    connectionsCheckingInterval: Math.min(1_000, initial.limits.headersTimeoutMs),
  };
  const readTls = (): { cert: Buffer; key: Buffer } => ({ cert: readFileSync((tls as { certFile: string }).certFile), key: readFileSync((tls as { keyFile: string }).keyFile) });
  const traffic: Server = tls === undefined ? createServer(serverOptions, onRequest) : createTlsServer({ ...serverOptions, ...readTls() }, onRequest);
  if (tls !== undefined) {
    // Certificate renewal without restart: new connections get the new pair once both files are read.
    const reloadCert = (): void => {
      try {
        (traffic as import('node:https').Server).setSecureContext(readTls());
        logger.info({ event: 'tls_reloaded' }, 'TLS certificate reloaded');
      } catch {
        logger.error({ event: 'tls_reload_failed' }, 'TLS certificate reload failed; keeping the current one');
      }
    };
    watchFile(tls.certFile, { interval: 2_000 }, reloadCert);
    watchFile(tls.keyFile, { interval: 2_000 }, reloadCert);
  }
  // Expect: 100-continue is answered by the pipeline only after authorization (SC-109).
  traffic.on('checkContinue', onRequest);
  // CONNECT and upgrades are not proxied (SC-127).
  traffic.on('connect', (_req, socket) => socket.end('HTTP/1.1 405 Method Not Allowed\r\nconnection: close\r\ncontent-length: 0\r\n\r\n'));
  traffic.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n'));
  traffic.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return void socket.destroy();
    // What the parser refused: headers too large (SC-150), too slow (SC-156), or malformed (SC-110/111).
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  });

  let draining = false;
  const ready = (): boolean => !draining && [...(state as State).issuerKeys.values()].every((k) => k.status().usable);
  const admin = createServer((req, res) => {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path === '/healthz') return json(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      const issuers = [...(state as State).issuerKeys.values()].map((k) => k.status()).map(({ lastError: _e, ...s }) => s);
      return json(res, ready() ? 200 : 503, { ready: ready(), draining, issuers });
    }
    if (path === '/metrics') {
      void metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(text);
      });
      return;
    }
    return json(res, 404, { error: 'not_found' });
  });

  const gateway: Gateway = {
    get config() {
      return (state as State).config;
    },
    get issuerKeys() {
      return (state as State).issuerKeys;
    },
    metrics,
    ready,
    async listen() {
      // Key fetches start now; a failing IdP leaves the gateway up but not ready, refusing requests.
      await startKeys((state as State).issuerKeys.values(), (state as State).config);
      const t = await listenOn(traffic, initial.listen.host, initial.listen.port);
      const a = await listenOn(admin, initial.admin.host, initial.admin.port);
      return { traffic: t, admin: a };
    },
    async reload(load) {
      const current = state as State;
      try {
        const next = load();
        if (next.listen.host !== current.config.listen.host || next.listen.port !== current.config.listen.port || next.admin.port !== current.config.admin.port || next.admin.host !== current.config.admin.host) {
          throw new ConfigError([{ file: next.file, line: undefined, key: 'listen', message: 'listener addresses change only with a restart' }]);
        }
        const built = await build(next, current);
        await startKeys([...built.issuerKeys.values()].filter((k) => !current.issuerKeys.has(k.name) || current.issuerKeys.get(k.name) !== k), next);
        // The swap: requests that already started finish on the old state.
        state = built;
        for (const [name, keys] of current.issuerKeys) if (built.issuerKeys.get(name) !== keys) keys.stop();
        void current.pools.close();
        metrics.configReload('success');
        logger.info({ event: 'config_reloaded', upstreams: next.upstreams.length, issuers: next.issuers.length }, 'configuration reloaded');
      } catch (err) {
        metrics.configReload('failure');
        logger.error({ event: 'config_reload_failed', error: err instanceof ConfigError ? err.message : 'reload failed' }, 'configuration reload failed; the previous configuration keeps serving');
        throw err;
      }
    },
    async shutdown(graceMs = (state as State).config.limits.shutdownGraceMs) {
      draining = true;
      const closed = closeServer(traffic);
      traffic.closeIdleConnections();
      streams.endAll(SHUTDOWN_EVENT);
      const deadline = Date.now() + graceMs;
      while (inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      await gateway.close();
      await closed;
    },
    async close() {
      if (tls !== undefined) {
        unwatchFile(tls.certFile);
        unwatchFile(tls.keyFile);
      }
      for (const k of (state as State).issuerKeys.values()) k.stop();
      traffic.closeAllConnections();
      admin.closeAllConnections();
      await Promise.all([closeServer(traffic), closeServer(admin)]);
      await (state as State).pools.close();
    },
  };
  return gateway;
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
