import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/compile.ts';
import { ConfigError } from './config/errors.ts';
import type { IssuerKeys } from './auth/keys.ts';
import { createAdminServer } from './observe/admin.ts';
import { createLogger, type Logger } from './observe/log.ts';
import { createMetrics, type Metrics } from './observe/metrics.ts';
import { StreamRegistry } from './proxy/stream.ts';
import { createTrafficListener } from './route/listener.ts';
import { buildState, type Shared, type State } from './state.ts';

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

const SHUTDOWN_EVENT = 'event: shutdown\nretry: 1000\ndata: {"reason":"gateway shutting down"}\n\n';

/** Wires the listeners to the state built from the current Config; reload swaps that state whole. */
export async function createGateway(initial: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const now = options.now ?? Date.now;
  const logger = options.logger ?? createLogger();
  // Assigned below, before any listener, scrape or key callback can run.
  let serving: State;
  const metrics = createMetrics({
    keys: () => [...serving.issuerKeys.values()].map((k) => k.status()),
    tokenCache: () => ({ hits: serving.cache.hits, misses: serving.cache.misses }),
  });
  const streams = new StreamRegistry((upstream, delta) => (delta === 1 ? metrics.streamOpened(upstream) : metrics.streamClosed(upstream)));
  const shared: Shared = { now, logger, metrics, streams, current: () => serving };
  serving = await buildState(initial, undefined, shared);

  let inflight = 0;
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    inflight++;
    res.on('close', () => inflight--);
    void serving.handle(req, res);
  };
  const traffic = createTrafficListener(initial, onRequest, logger);
  let draining = false;
  const ready = (): boolean => !draining && [...serving.issuerKeys.values()].every((k) => k.status().usable);
  const admin = createAdminServer({
    ready,
    readiness: () => ({ draining, issuers: [...serving.issuerKeys.values()].map((k) => k.status()).map(({ lastError: _e, ...s }) => s) }),
    metrics,
  });

  const swap = async (next: Config): Promise<void> => {
    const current = serving;
    const fixed = (c: Config): string => JSON.stringify([c.listen.host, c.listen.port, c.admin.host, c.admin.port]);
    if (fixed(next) !== fixed(current.config)) {
      throw new ConfigError([{ file: next.file, line: undefined, key: 'listen', message: 'listener addresses change only with a restart' }]);
    }
    const built = await buildState(next, current, shared);
    await Promise.all([...built.issuerKeys.values()].filter((k) => current.issuerKeys.get(k.name) !== k).map((k) => k.start()));
    // The swap: requests that already started finish on the old state.
    serving = built;
    for (const [name, keys] of current.issuerKeys) if (built.issuerKeys.get(name) !== keys) keys.stop();
    void current.pools.close();
  };

  const gateway: Gateway = {
    get config() {
      return serving.config;
    },
    get issuerKeys() {
      return serving.issuerKeys;
    },
    metrics,
    ready,
    async listen() {
      // Key fetches start now; a failing IdP leaves the gateway up but not ready, refusing requests.
      await Promise.all([...serving.issuerKeys.values()].map((k) => k.start()));
      const t = await listenOn(traffic.server, initial.listen.host, initial.listen.port);
      const a = await listenOn(admin, initial.admin.host, initial.admin.port);
      return { traffic: t, admin: a };
    },
    async reload(load) {
      try {
        const next = load();
        await swap(next);
        metrics.configReload('success');
        logger.info({ event: 'config_reloaded', upstreams: next.upstreams.length, issuers: next.issuers.length }, 'configuration reloaded');
      } catch (err) {
        metrics.configReload('failure');
        logger.error({ event: 'config_reload_failed', error: err instanceof ConfigError ? err.message : 'reload failed' }, 'configuration reload failed; the previous configuration keeps serving');
        throw err;
      }
    },
    async shutdown(graceMs = serving.config.limits.shutdownGraceMs) {
      draining = true;
      const closed = closeServer(traffic.server);
      traffic.server.closeIdleConnections();
      streams.endAll(SHUTDOWN_EVENT);
      const deadline = Date.now() + graceMs;
      while (inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      await gateway.close();
      await closed;
    },
    async close() {
      traffic.stop();
      for (const k of serving.issuerKeys.values()) k.stop();
      traffic.server.closeAllConnections();
      admin.closeAllConnections();
      await Promise.all([closeServer(traffic.server), closeServer(admin)]);
      await serving.pools.close();
    },
  };
  return gateway;
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
