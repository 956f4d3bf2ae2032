import { createLocalJWKSet, errors as joseErrors, type CryptoKey, type JSONWebKeySet, type JWK, type JWSHeaderParameters, type FlattenedJWSInput } from 'jose';
import type { IssuerConfig } from '../config/compile.ts';
import { discoverJwksUri } from './discovery.ts';
import { FetchFailed, fetchJson } from './fetch-json.ts';
import { GatewayKeyPublished, gatewayKeysIn } from './gateway-key.ts';

/** No usable key set (cold start failed, or the stale window ran out): fail closed with 503. */
export class KeysUnavailable extends Error {
  constructor() {
    super('signing keys unavailable');
    this.name = 'KeysUnavailable';
  }
}
/** The token names a key the issuer does not publish (after the one permitted refetch). */
export class KeyUnknown extends Error {
  constructor() {
    super('unknown signing key');
    this.name = 'KeyUnknown';
  }
}

export interface KeysStatus {
  readonly issuer: string;
  readonly usable: boolean;
  readonly keys: number;
  /** Seconds past the fresh lifetime while serving the last good set; 0 when fresh. */
  readonly staleSeconds: number;
  readonly lastError: string | undefined;
}

export type FetchResult = 'ok' | FetchFailed['code'] | 'invalid_shape';

export interface KeysDeps {
  readonly now: () => number;
  readonly onFetch?: (issuer: string, result: FetchResult) => void;
  readonly onKeysRemoved?: (issuer: string, kids: ReadonlySet<string>) => void;
  /**
   * RFC 7638 thumbprints of the gateway's own public keys. A key of the issuer's set with one of them
   * never verifies a token: it is dropped at every fetch (onGatewayKey reports it), and start() fails.
   */
  readonly gatewayThumbprints?: ReadonlySet<string>;
  readonly onGatewayKey?: (issuer: string, kids: readonly string[]) => void;
}

type Resolver = ReturnType<typeof createLocalJWKSet>;
const KEY_TYPES = new Set(['RSA', 'EC', 'OKP']);
const FAILED_RETRY_MS = 1_000;

/**
 * One issuer's signing keys. Policy (documented in README "Signing keys"):
 * - fresh for cacheMaxAgeSeconds (or the server's Cache-Control max-age, if shorter), refreshed in the
 *   background from 80 % of that lifetime, one fetch in flight at a time;
 * - an unknown kid triggers at most one refetch per cooldownSeconds;
 * - when refreshes fail, the last good set serves until staleIfErrorSeconds past its fresh lifetime,
 *   then every token of this issuer is refused (KeysUnavailable) until a fetch succeeds again.
 */
export class IssuerKeys {
  readonly #config: IssuerConfig;
  readonly #deps: KeysDeps;
  #resolver: Resolver | undefined;
  #kids: ReadonlySet<string> = new Set();
  #fetchedAt = 0;
  #expiresAt = 0;
  #refreshAt = 0;
  #lastAttemptAt = -Infinity;
  #lastAttemptFailed = false;
  #lastForcedAt = -Infinity;
  #lastError: string | undefined;
  #inflight: Promise<void> | undefined;
  #jwksUri: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** kids of the gateway's own keys found in the last fetched set. */
  #gatewayKids: readonly string[] = [];

  constructor(config: IssuerConfig, deps: KeysDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#jwksUri = config.jwksUri;
  }

  get name(): string {
    return this.#config.name;
  }

  /**
   * First fetch and the background refresh tick; the gateway starts even when the fetch fails (not
   * ready), but never when the set publishes the gateway's own key (GatewayKeyPublished).
   */
  async start(): Promise<void> {
    this.#timer ??= setInterval(() => this.maintain(), 1_000);
    this.#timer.unref();
    await this.refresh();
    if (this.#gatewayKids.length > 0) {
      this.stop();
      throw new GatewayKeyPublished(this.#config.name, this.#gatewayKids);
    }
  }

  /** Whether this cache was built to refuse exactly these gateway keys (reload reuses it only then). */
  refuses(thumbprints: ReadonlySet<string>): boolean {
    const own = this.#deps.gatewayThumbprints ?? new Set<string>();
    return own.size === thumbprints.size && [...thumbprints].every((t) => own.has(t));
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Background refresh before expiry, and retries while failing. Safe to call any time. */
  maintain(): void {
    const now = this.#deps.now();
    const due = this.#lastAttemptFailed ? this.#lastAttemptAt + FAILED_RETRY_MS : this.#refreshAt;
    if (now >= due) void this.refresh();
  }

  status(): KeysStatus {
    const now = this.#deps.now();
    return {
      issuer: this.#config.name,
      usable: this.#usable(now),
      keys: this.#kids.size,
      staleSeconds: this.#resolver === undefined ? 0 : Math.max(0, (now - this.#expiresAt) / 1000),
      lastError: this.#lastError,
    };
  }

  /** Whether tokens of this issuer may be accepted now (cheap: also asked on verified-cache hits). */
  usable(): boolean {
    return this.#usable(this.#deps.now());
  }

  /**
   * For a request that finds no usable keys (cold, or past the stale window): waits for the fetch in
   * flight, such as the background retry after an outage, instead of refusing while it may be about to
   * succeed; else makes one attempt (rate-limited while failing). Bounded by the fetch's own timeouts.
   */
  async recovered(): Promise<boolean> {
    if (this.#inflight !== undefined) await this.#inflight;
    else if (!this.#lastAttemptFailed || this.#deps.now() - this.#lastAttemptAt >= FAILED_RETRY_MS) await this.refresh();
    return this.#usable(this.#deps.now());
  }

  hasKid(kid: string): boolean {
    return this.#kids.has(kid);
  }

  /** jose key-resolver: keys come from this issuer's JWKS only, never from jku/x5u/jwk/x5c (RFC 8725 §3.10). */
  readonly resolve = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    let now = this.#deps.now();
    if (!this.#usable(now)) {
      if (!(await this.recovered())) throw new KeysUnavailable();
      now = this.#deps.now();
    } else if (now >= this.#refreshAt) {
      void this.refresh();
    }
    try {
      return await (this.#resolver as Resolver)(header, token);
    } catch (err) {
      if (!(err instanceof joseErrors.JWKSNoMatchingKey)) throw err;
    }
    // Rotation: a kid we have not seen may be new. One refetch per cooldown, whatever the kid (SC-038,
    // SC-157); requests arriving while that refetch runs wait for it instead of failing.
    if (this.#inflight === undefined) {
      if (now - this.#lastForcedAt < this.#config.jwks.cooldownSeconds * 1000) throw new KeyUnknown();
      this.#lastForcedAt = now;
    }
    await this.refresh();
    try {
      return await (this.#resolver as Resolver)(header, token);
    } catch (err) {
      if (err instanceof joseErrors.JWKSNoMatchingKey) throw new KeyUnknown();
      throw err;
    }
  };

  #usable(now: number): boolean {
    return this.#resolver !== undefined && now < this.#expiresAt + this.#config.jwks.staleIfErrorSeconds * 1000;
  }

  refresh(): Promise<void> {
    this.#inflight ??= this.#fetch().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #fetch(): Promise<void> {
    const cfg = this.#config.jwks;
    this.#lastAttemptAt = this.#deps.now();
    let result: FetchResult = 'ok';
    try {
      this.#jwksUri ??= await discoverJwksUri(this.#config);
      const fetched = await fetchJson(this.#jwksUri, cfg.timeoutMs, cfg.maxBytes);
      const listed = this.#usableKeys(fetched.body);
      if (listed === undefined) {
        result = 'invalid_shape';
        throw new FetchFailed('invalid_json', 'not a JWK Set');
      }
      const own = await gatewayKeysIn(fetched.body, this.#deps.gatewayThumbprints);
      this.#gatewayKids = own.kids;
      if (own.kids.length > 0) this.#deps.onGatewayKey?.(this.#config.name, own.kids);
      const keys = listed.filter((k) => !own.dropped.has(k));
      const now = this.#deps.now();
      const lifetime = effectiveMaxAge(fetched.maxAgeSeconds, cfg.cacheMaxAgeSeconds) * 1000;
      const kids = new Set(keys.map((k) => k.kid as string));
      const removed = new Set([...this.#kids].filter((kid) => !kids.has(kid)));
      this.#resolver = createLocalJWKSet({ keys } as JSONWebKeySet);
      this.#kids = kids;
      this.#fetchedAt = now;
      this.#expiresAt = now + lifetime;
      this.#refreshAt = now + lifetime * 0.8;
      this.#lastAttemptFailed = false;
      this.#lastError = undefined;
      if (removed.size > 0) this.#deps.onKeysRemoved?.(this.#config.name, removed);
    } catch (err) {
      if (result === 'ok') result = err instanceof FetchFailed ? err.code : 'network';
      this.#lastAttemptFailed = true;
      this.#lastError = err instanceof Error ? err.message : 'fetch failed';
      // Discovery is retried on the next attempt: the metadata may have been what failed.
      if (this.#config.jwksUri === undefined && this.#resolver === undefined) this.#jwksUri = undefined;
    } finally {
      this.#deps.onFetch?.(this.#config.name, result);
    }
  }

  /** RFC 7517 §5: keep only asymmetric signing keys with a kid that fit this issuer's algorithms. */
  #usableKeys(body: unknown): JWK[] | undefined {
    if (typeof body !== 'object' || body === null || !Array.isArray((body as { keys?: unknown }).keys)) return undefined;
    const algorithms = new Set(this.#config.algorithms);
    const out: JWK[] = [];
    for (const key of (body as { keys: unknown[] }).keys) {
      if (typeof key !== 'object' || key === null || Array.isArray(key)) continue;
      const k = key as JWK & { d?: unknown; key_ops?: unknown };
      if (typeof k.kid !== 'string' || k.kid.length === 0 || k.kid.length > 256) continue;
      if (typeof k.kty !== 'string' || !KEY_TYPES.has(k.kty)) continue; // oct and unknown types: never
      if (k.d !== undefined) continue; // a private key published by mistake is not trusted either
      if (k.use !== undefined && k.use !== 'sig') continue;
      if (k.alg !== undefined && !algorithms.has(k.alg)) continue;
      if (k.key_ops !== undefined && !(Array.isArray(k.key_ops) && k.key_ops.includes('verify'))) continue;
      out.push(k);
    }
    return out;
  }

  get fetchedAt(): number {
    return this.#fetchedAt;
  }
}

/** Honour the server's max-age within [min(configured, 60 s), configured]. */
function effectiveMaxAge(serverSeconds: number | undefined, configured: number): number {
  if (serverSeconds === undefined) return configured;
  return Math.min(configured, Math.max(serverSeconds, Math.min(configured, 60)));
}

