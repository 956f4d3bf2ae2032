// Serves requests with the oidc-provider instance that matches the current signing keys.
// oidc-provider fixes its keystore at construction, so a key publication, activation or
// retirement builds a new instance; grants, clients and cookies live in shared state and carry over.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Provider } from 'oidc-provider';
// Not re-exported by the package entry, but reachable (no "exports" map) and declared in
// oidc-provider.d.ts: the factory gives each issuer its own LRU store (1000 entries).
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';
import { handleInteraction } from './interaction.ts';
import type { KeyRing, KeyView } from './key-ring.ts';
import type { IssuerSettings } from './options.ts';
import { createFederation, createReplayCache, type Federation } from './federation/grant.ts';
import type { ReplayCache } from './federation/replay.ts';
import { buildProviderConfiguration, INTERACTION_PATH, resourcePolicyFor, type SharedProviderState } from './provider-config.ts';
import { IssuerTransmitter } from './ssf.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Current {
  readonly viewId: string;
  readonly provider: Provider;
  readonly handler: Handler;
}

export class ProviderHost {
  #settings: IssuerSettings;
  readonly #issuer: string;
  readonly #issuerHost: string;
  readonly #https: boolean;
  readonly #keyRing: KeyRing;
  readonly #shared: SharedProviderState;
  /** Used jti values outlive reloads: a reload must not make an assertion usable twice. */
  readonly #replay: ReplayCache = createReplayCache();
  #federation: Federation;
  #current: Current;
  /** The SSF transmitter (restart-only settings): its stream outlives every provider instance. */
  readonly transmitter: IssuerTransmitter | undefined;

  /** `mtlsUrl`: the RFC 8705 listener, whose token endpoint discovery advertises as an alias. */
  constructor(settings: IssuerSettings, issuer: string, keyRing: KeyRing, mtlsUrl?: string) {
    this.#settings = settings;
    this.#issuer = issuer;
    const url = new URL(issuer);
    this.#issuerHost = url.host;
    this.#https = url.protocol === 'https:';
    this.#keyRing = keyRing;
    // Cookie keys are per process: the sessions they protect live in memory too.
    this.#shared = {
      adapter: createMemoryAdapter(),
      cookieKeys: [randomBytes(32).toString('base64url')],
      ...(mtlsUrl === undefined ? {} : { mtlsTokenEndpoint: new URL('/token', mtlsUrl).href }),
    };
    this.#federation = createFederation(settings.federation, issuer, this.#replay);
    this.transmitter = settings.ssf === undefined ? undefined : new IssuerTransmitter(settings.ssf, issuer, settings.signingAlg, keyRing, settings.now);
    this.#current = this.#build(keyRing.view(), settings);
  }

  /**
   * A reload: the next request is served by a provider built from `settings`. The adapter (clients,
   * grants, refresh tokens, sessions), the cookie keys and the signing keys carry over unchanged.
   * Requests already running finish on the provider they started on.
   */
  reconfigure(settings: IssuerSettings): void {
    const previous = this.#federation;
    this.#federation = createFederation(settings.federation, this.#issuer, this.#replay);
    let next: Current;
    try {
      next = this.#build(this.#keyRing.view(), settings);
    } catch (error) {
      this.#federation.stop();
      this.#federation = previous;
      throw error;
    }
    previous.stop();
    this.#settings = settings;
    this.#current = next;
  }

  /** Stops the platform key refreshes. */
  stop(): void {
    this.#federation.stop();
  }

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    let current: Current;
    try {
      current = this.#refresh();
    } catch {
      fail(res);
      return;
    }
    this.#pinOrigin(req);
    const path = URL.parse(req.url ?? '/', 'http://issuer.invalid')?.pathname ?? '/';
    if (this.transmitter?.handle(req, res, path) === true) return;
    if (path.startsWith(INTERACTION_PATH)) {
      handleInteraction(current.provider, this.#settings.local, req, res).catch(() => fail(res));
      return;
    }
    current.handler(req, res);
  };

  /**
   * oidc-provider builds endpoint URLs from the request's Host and protocol. Pinning both to the
   * issuer keeps every advertised URL under the issuer's origin, whatever a client (or a
   * misconfigured proxy) sends: no Host-header poisoning of metadata or redirects.
   */
  #pinOrigin(req: IncomingMessage): void {
    req.headers.host = this.#issuerHost;
    delete req.headers['x-forwarded-host'];
    // An https issuer is necessarily behind a TLS terminator (this server speaks plain http);
    // Koa reads the protocol from X-Forwarded-Proto only when `proxy` is set (see #build).
    if (this.#https) req.headers['x-forwarded-proto'] = 'https';
    else delete req.headers['x-forwarded-proto'];
  }

  #refresh(): Current {
    const view = this.#keyRing.view();
    if (view.id !== this.#current.viewId) this.#current = this.#build(view, this.#settings);
    return this.#current;
  }

  #build(view: KeyView, settings: IssuerSettings): Current {
    const provider = new Provider(this.#issuer, buildProviderConfiguration(settings, view, this.#shared, this.#federation.clients));
    this.#federation.register(provider, resourcePolicyFor(settings, view));
    this.transmitter?.attach(provider);
    // Lets Koa read the protocol #pinOrigin wrote; the forwarded headers are ours by then.
    provider.proxy = this.#https;
    return { viewId: view.id, provider, handler: provider.callback() };
  }
}

function fail(res: ServerResponse): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(500, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify({ error: 'server_error' }));
}
