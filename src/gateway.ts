import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/compile.ts';
import { ConfigError } from './config/errors.ts';
import type { IssuerKeys } from './auth/keys.ts';
import { startKeys } from './auth/gateway-key.ts';
import { refuseKeyLoss } from './auth/carry.ts';
import { createAdminServer } from './observe/admin.ts';
import { createLogger, type Logger } from './observe/log.ts';
import { createMetrics, type Metrics } from './observe/metrics.ts';
import { StreamRegistry } from './proxy/stream.ts';
import { rejudgeStreams } from './proxy/rejudge.ts';
import { createTrafficListener, type TrafficListener } from './route/listener.ts';
import { Drain, drainTraffic } from './route/drain.ts';
import { buildState, type Shared, type State } from './state.ts';
import { pinStatus } from './policy/pins.ts';
import { AuditChain } from './observe/audit-chain.ts';
import { Revocations } from './revoke/service.ts';
import { sharedListen } from './workers/listen.ts';

/** A gateway started by serve.ts from a file (serve, tests, each worker of `serve --workers`). */
export type ServedGateway = Gateway & {
  readonly addresses: Awaited<ReturnType<Gateway['listen']>>;
  /** Re-reads the config file; an invalid one is reported and the running config kept. */
  reloadFromFile(): Promise<boolean>;
  /** The same with another source of the config (a worker: the text its primary validated). */
  reloadWith(load: () => Config): Promise<boolean>;
};

export interface GatewayOptions {
  readonly logger?: Logger;
  /** Injected clock in ms (STYLE rule 11); defaults to Date.now. */
  readonly now?: () => number;
  /** A `serve --workers` process: the traffic listener shares its port (SO_REUSEPORT), the primary answers admin. */
  readonly worker?: boolean;
}

export interface Gateway {
  /** The configuration currently serving (swapped whole by reload). */
  readonly config: Config;
  /** Binds the traffic and admin listeners; resolves with the bound addresses. */
  listen(): Promise<{ readonly traffic: AddressInfo; readonly admin: AddressInfo }>;
  ready(): boolean;
  /** The /readyz body beside `ready`. */
  readiness(): Record<string, unknown>;
  /** Loads (validates) and swaps in a new configuration atomically; a failure keeps the old one serving. */
  reload(load: () => Config): Promise<void>;
  /** SIGTERM: not ready, Connection: close, stop accepting after drainDelayMs, finish in-flight requests, end SSE streams with a final event. */
  shutdown(graceMs?: number): Promise<void>;
  close(): Promise<void>;
  readonly metrics: Metrics;
  /** For tests and drills: the current issuers' key caches. */
  readonly issuerKeys: ReadonlyMap<string, IssuerKeys>;
}

const SHUTDOWN_EVENT = 'event: shutdown\nretry: 1000\ndata: {"reason":"gateway shutting down"}\n\n';

/** Wires the listeners to the state built from the current Config; reload swaps that state whole. */
export async function createGateway(initial: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = options.logger ?? createLogger();
  // Metrics and key callbacks read the gateway once it exists; before that there is nothing to report.
  let gateway: RunningGateway | undefined;
  const metrics = createMetrics({
    keys: () => [...(gateway?.issuerKeys.values() ?? [])].map((k) => k.status()),
    tokenCache: () => gateway?.tokenCacheStats() ?? { hits: 0, misses: 0 },
    breakGlass: { grants: () => gateway?.config.breakGlass ?? [], now: options.now ?? Date.now },
  });
  const streams = new StreamRegistry((upstream, delta) => (delta === 1 ? metrics.streamOpened(upstream) : metrics.streamClosed(upstream)));
  const now = options.now ?? Date.now;
  const revocations = new Revocations(initial, { now, logger, metrics, streams, keys: () => gateway?.issuerKeys ?? new Map() });
  const audit = new AuditChain({ logger, now, signer: () => gateway?.serving.signer, settings: () => (gateway?.serving.config ?? initial).audit });
  const shared: Shared = { now, logger, metrics, streams, audit, current: () => gateway?.serving, revocations };
  gateway = new RunningGateway(initial, await buildState(initial, undefined, shared), shared, options.worker === true);
  return gateway;
}

class RunningGateway implements Gateway {
  readonly metrics: Metrics;
  readonly #initial: Config;
  readonly #shared: Shared;
  readonly #traffic: TrafficListener;
  readonly #admin: Server;
  #serving: State;
  readonly #drain = new Drain();
  readonly #worker: boolean;

  constructor(initial: Config, state: State, shared: Shared, worker: boolean) {
    this.#initial = initial;
    this.#worker = worker;
    this.#serving = state;
    this.#shared = shared;
    this.metrics = shared.metrics;
    this.#traffic = createTrafficListener(initial, (req, res) => this.#onRequest(req, res), shared.logger);
    this.#admin = createAdminServer({
      ready: () => this.ready(),
      readiness: () => this.readiness(),
      metrics: shared.metrics,
      extra: (req, res, path) => shared.revocations.handleAdmin(req, res, path),
    });
  }

  readiness(): Record<string, unknown> {
    return { draining: this.#drain.draining, pins: pinStatus(this.#serving.config), rateLimits: this.#serving.limitStore.status(), issuers: [...this.#serving.issuerKeys.values()].map((k) => k.status()).map(({ lastError: _e, ...s }) => s), upstreams: this.#serving.pools.health.report(), revocation: this.#shared.revocations.status() };
  }

  get serving(): State {
    return this.#serving;
  }

  tokenCacheStats(): { readonly hits: number; readonly misses: number } {
    return { hits: this.#serving.cache.hits, misses: this.#serving.cache.misses };
  }

  get config(): Config {
    return this.#serving.config;
  }

  get issuerKeys(): ReadonlyMap<string, IssuerKeys> {
    return this.#serving.issuerKeys;
  }

  ready(): boolean {
    return !this.#drain.draining && [...this.#serving.issuerKeys.values()].every((k) => k.status().usable) && this.#shared.revocations.ready();
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.#drain.track(res);
    void this.#serving.handle(req, res);
  }

  async listen(): Promise<{ readonly traffic: AddressInfo; readonly admin: AddressInfo }> {
    // Key fetches start now; a failing IdP leaves the gateway up but not ready, refusing requests.
    await startKeys(this.#serving.issuerKeys.values(), this.#serving.config);
    this.#shared.revocations.start();
    const traffic = await listenOn(this.#traffic.server, this.#initial.listen.host, this.#initial.listen.port, this.#worker);
    // A worker's admin is the primary's (src/workers/primary.ts): its own stays unbound.
    const admin = this.#worker ? traffic : await listenOn(this.#admin, this.#initial.admin.host, this.#initial.admin.port);
    return { traffic, admin };
  }

  async reload(load: () => Config): Promise<void> {
    try {
      const next = load();
      await this.#swap(next);
      this.metrics.configReload('success');
      this.#shared.logger.info({ event: 'config_reloaded', upstreams: next.upstreams.length, issuers: next.issuers.length }, 'configuration reloaded');
    } catch (err) {
      this.metrics.configReload('failure');
      this.#shared.logger.error({ event: 'config_reload_failed', error: err instanceof ConfigError ? err.message : 'reload failed' }, 'configuration reload failed; the previous configuration keeps serving');
      throw err;
    }
  }

  async #swap(next: Config): Promise<void> {
    const current = this.#serving;
    const fixed = (c: Config): string => JSON.stringify([c.listen.host, c.listen.port, c.admin.host, c.admin.port]);
    if (fixed(next) !== fixed(current.config)) {
      throw new ConfigError([{ file: next.file, line: undefined, key: 'listen', message: 'listener addresses change only with a restart' }]);
    }
    const built = await buildState(next, current, this.#shared);
    try {
      await startKeys([...built.issuerKeys.values()].filter((k) => current.issuerKeys.get(k.name) !== k), next);
      refuseKeyLoss(current.issuerKeys, built.issuerKeys, next);
      this.#shared.revocations.reconfigure(next);
    } catch (err) {
      void built.pools.close();
      if (built.limitStore !== current.limitStore) void built.limitStore.close();
      if (built.tracing !== current.tracing) void built.tracing.shutdown();
      throw err;
    }
    // The swap: requests that already started finish on the old state.
    this.#serving = built;
    rejudgeStreams(this.#shared.streams, next, built.issuerKeys, this.#shared.now);
    for (const [name, keys] of current.issuerKeys) if (built.issuerKeys.get(name) !== keys) keys.stop();
    void current.pools.close();
    if (built.limitStore !== current.limitStore) void current.limitStore.close();
    if (built.tracing !== current.tracing) void current.tracing.shutdown();
  }

  async shutdown(graceMs = this.#serving.config.limits.shutdownGraceMs): Promise<void> {
    const endStreams = (): void => this.#shared.streams.endAll(SHUTDOWN_EVENT);
    const { closed } = await drainTraffic({ server: this.#traffic.server, drain: this.#drain, endStreams, delayMs: this.#serving.config.limits.drainDelayMs, graceMs });
    await this.close();
    await closed;
  }

  async close(): Promise<void> {
    this.#traffic.stop();
    this.#shared.revocations.stop();
    for (const k of this.#serving.issuerKeys.values()) k.stop();
    this.#traffic.server.closeAllConnections();
    this.#admin.closeAllConnections();
    await Promise.all([closeServer(this.#traffic.server), closeServer(this.#admin)]);
    await this.#serving.pools.close();
    await this.#serving.limitStore.close();
    await this.#shared.audit.seal();
    await this.#serving.tracing.shutdown();
  }
}

function listenOn(server: Server, host: string, port: number, sharedPort = false): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ...sharedListen(sharedPort, port) }, () => {
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
