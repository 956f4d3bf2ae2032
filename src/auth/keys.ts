import { createLocalJWKSet, errors as joseErrors, type CryptoKey, type JSONWebKeySet, type JWK, type JWSHeaderParameters, type FlattenedJWSInput } from 'jose';
import type { IssuerConfig } from '../config/compile.ts';
import { discoverJwksUri } from './discovery.ts';
import { FetchFailed, fetchJson, loggableUrl } from './fetch-json.ts';
import { GatewayKeyPublished, gatewayKeysIn } from './gateway-key.ts';
import { evictOldest } from '../lib/evict.ts';
import { effectiveMaxAge, noUsableKeyMessage, UnusableSet, usableKeys } from './jwks-set.ts';

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
  /** Only while not usable: why, for /readyz (issue 24 §1). */
  readonly reason?: FetchFailure | { readonly result: 'not_fetched'; readonly error: string };
}

export type FetchResult = 'ok' | FetchFailed['code'] | 'invalid_shape' | 'no_usable_key';

/** One failed fetch in the operator's terms: the result label, the precise cause, where, and the status. */
export interface FetchFailure {
  readonly result: Exclude<FetchResult, 'ok'>;
  readonly error: string;
  readonly url?: string;
  readonly status?: number;
}

export interface KeysDeps {
  readonly now: () => number;
  readonly onFetch?: (issuer: string, result: FetchResult, failure: FetchFailure | undefined) => void;
  readonly onKeysRemoved?: (issuer: string, kids: ReadonlySet<string>) => void;
  /** The keys went from usable to unusable (the stale window ran out): the issuer fails closed. */
  readonly onUnusable?: (issuer: string) => void;
  /**
   * RFC 7638 thumbprints of the gateway's own public keys. A key of the issuer's set with one of them
   * never verifies a token: it is dropped at every fetch (onGatewayKey reports it), and start() fails.
   */
  readonly gatewayThumbprints?: ReadonlySet<string>;
  readonly onGatewayKey?: (issuer: string, kids: readonly string[]) => void;
  /** Waits `ms` of the injected clock's time (tests move the clock); default: a real timer. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** In [0, 1): the jitter of retry back-off; default Math.random. */
  readonly random?: () => number;
}

type Resolver = ReturnType<typeof createLocalJWKSet>;
/** Back-off after the first failed fetch (so the first retry comes 1-2 s later); doubles per failure, up to jwks.retryMaxSeconds. */
const RETRY_BASE_MS = 2_000;
/** Kids refused after a refetch, remembered for cooldownSeconds (bounded: a flood of random kids). */
const REFUSED_KIDS = 4_096;
/** Bound on #chosen: a set holds a handful of keys, and only kids jose found in it get in. */
const CHOSEN_KEYS = 256;
/**
 * A compact JWS's (alg, kid) as jose's JWKS resolver reads them: no kid and an empty kid choose apart.
 * Undefined (never remembered) for anything else: an unprotected header, a kid that is not a string.
 */
function chosenName(header: JWSHeaderParameters, token: FlattenedJWSInput): string | undefined {
  if (token.header !== undefined || typeof header.alg !== 'string') return undefined;
  if (header.kid === undefined) return header.alg;
  return typeof header.kid === 'string' ? `${header.alg} #${header.kid}` : undefined;
}
const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One issuer's signing keys. Policy (documented in README "Signing keys"):
 * - fresh for cacheMaxAgeSeconds (or the server's Cache-Control max-age, if shorter), refreshed in the
 *   background from 80 % of that lifetime, one fetch in flight at a time;
 * - an unknown kid waits for a refetch that starts after it arrived (so a key published before use is
 *   always found), at most one per unknownKidIntervalMs whatever the kids; a kid that refetch did not
 *   find is refused without any fetch for cooldownSeconds (per kid, bounded);
 * - a failed fetch (a 200 without one usable key included) is retried with jittered exponential
 *   back-off up to retryMaxSeconds, one in flight, whatever the traffic;
 * - when refreshes fail, the last good set serves until staleIfErrorSeconds past its fresh lifetime,
 *   then every token of this issuer is refused (KeysUnavailable) until a fetch succeeds again.
 */
export class IssuerKeys {
  readonly #config: IssuerConfig;
  readonly #deps: KeysDeps;
  #resolver: Resolver | undefined;
  /** `alg kid` → the key #resolver returned for it (see resolve); replaced with the set. */
  #chosen = new Map<string, CryptoKey>();
  #removals = 0;
  #kids: ReadonlySet<string> = new Set();
  #expiresAt = 0;
  #refreshAt = 0;
  #lastAttemptAt = -Infinity;
  #lastAttemptFailed = false;
  /** Consecutive failed fetches, and when the next retry is due (back-off with jitter). */
  #failures = 0;
  #nextAttemptAt = 0;
  #lastForcedAt = -Infinity;
  /** Usable at the last maintain() tick: its change to false is the fail-closed moment. */
  #wasUsable = false;
  /** A forced refetch for unknown kids that has not started yet: later arrivals may join it. */
  #pending: Promise<void> | undefined;
  /** `alg kid` → when a forced refetch found no such key (the per-kid negative cache). */
  readonly #refused = new Map<string, number>();
  #lastError: string | undefined;
  #lastFailure: FetchFailure | undefined;
  #inflight: Promise<void> | undefined;
  #jwksUri: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The last good set as fetched (bounded by maxBytes), kept so a reload can re-read it (adopt). */
  #body: unknown;
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
    // An adopted set (reload) serves at once; its refresh and retry schedule carry on from maintain().
    if (this.#resolver === undefined) await this.refresh();
    else this.maintain();
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
    const usable = this.#usable(now);
    if (this.#wasUsable && !usable) this.#deps.onUnusable?.(this.#config.name);
    this.#wasUsable = usable;
    if (now >= this.#due()) void this.refresh();
  }

  /** When the next background fetch is due: the refresh point, or the back-off retry while failing. */
  #due(): number {
    return this.#lastAttemptFailed ? this.#nextAttemptAt : this.#refreshAt;
  }

  status(): KeysStatus {
    const now = this.#deps.now();
    const usable = this.#usable(now);
    return {
      issuer: this.#config.name,
      usable,
      keys: this.#kids.size,
      staleSeconds: this.#resolver === undefined ? 0 : Math.max(0, (now - this.#expiresAt) / 1000),
      lastError: this.#lastError,
      ...(usable ? {} : { reason: this.#lastFailure ?? { result: 'not_fetched', error: 'no key set fetched yet' } }),
    };
  }

  /** Whether tokens of this issuer may be accepted now (cheap: also asked on verified-cache hits). */
  usable(): boolean {
    return this.#usable(this.#deps.now());
  }

  /**
   * For a request that finds no usable keys (cold, or past the stale window): waits for the fetch in
   * flight, such as the background retry after an outage, instead of refusing while it may be about to
   * succeed; else makes one attempt if one is due (the back-off holds whatever the traffic). Bounded by
   * the fetch's own timeouts.
   */
  async recovered(): Promise<boolean> {
    if (this.#inflight !== undefined) await this.#inflight;
    else if (this.#deps.now() >= this.#due()) await this.refresh();
    return this.#usable(this.#deps.now());
  }

  /**
   * How many fetches so far removed keys from the set. A verification that saw this change while it
   * ran may have used a key whose cached tokens were dropped meanwhile: it must not cache its own.
   */
  get removals(): number {
    return this.#removals;
  }

  hasKid(kid: string): boolean {
    return this.#kids.has(kid);
  }

  /** jose key-resolver: keys come from this issuer's JWKS only, never from jku/x5u/jwk/x5c (RFC 8725 §3.10). */
  readonly resolve = (header: JWSHeaderParameters, token: FlattenedJWSInput): CryptoKey | Promise<CryptoKey> => {
    const arrived = this.#deps.now();
    if (!this.#usable(arrived)) return this.#resolveAfterRecovery(header, token, arrived);
    if (arrived >= this.#due()) void this.refresh();
    // The key jose's resolver chose for this (alg, kid) in the set in use: its choice depends on those
    // two alone, so it is taken again without its async filter-and-import pass (cold path, every token).
    const name = chosenName(header, token);
    const chosen = name === undefined ? undefined : this.#chosen.get(name);
    if (chosen !== undefined) return chosen;
    return this.#resolveInSet(header, token, arrived);
  };

  async #resolveAfterRecovery(header: JWSHeaderParameters, token: FlattenedJWSInput, arrived: number): Promise<CryptoKey> {
    if (!(await this.recovered())) throw new KeysUnavailable();
    return this.#resolveInSet(header, token, arrived);
  }

  async #resolveInSet(header: JWSHeaderParameters, token: FlattenedJWSInput, arrived: number): Promise<CryptoKey> {
    return (await this.#lookup(header, token)) ?? this.#resolveUnknown(header, token, arrived);
  }

  async #lookup(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey | undefined> {
    const resolver = this.#resolver as Resolver;
    const chosen = this.#chosen;
    try {
      const key = await resolver(header, token);
      // Remembered only for the set that chose it (a refetch may have installed another meanwhile),
      // and only for a single match: with several, jose tries each (JWKSMultipleMatchingKeys).
      const name = chosenName(header, token);
      if (name !== undefined && this.#resolver === resolver && chosen.size < CHOSEN_KEYS) chosen.set(name, key);
      return key;
    } catch (err) {
      if (err instanceof joseErrors.JWKSNoMatchingKey) return undefined;
      throw err;
    }
  }

  /**
   * Rotation under a flood of junk kids (SC-038, SC-157, issue 17 §1): a kid already refused is refused
   * again without a fetch for cooldownSeconds; any other waits for a refetch that starts after it
   * arrived, shared by every kid waiting then, at most one per unknownKidIntervalMs. So an IdP that
   * publishes a key before signing with it loses no request, and the IdP sees at most one such
   * fetch per interval. While fetches fail the key cannot be learned: 503, and no kid is remembered.
   */
  async #resolveUnknown(header: JWSHeaderParameters, token: FlattenedJWSInput, arrived: number): Promise<CryptoKey> {
    const cfg = this.#config.jwks;
    const name = `${String(header.alg)} ${typeof header.kid === 'string' ? header.kid : ''}`;
    const refusedAt = this.#refused.get(name);
    if (refusedAt !== undefined && arrived - refusedAt < cfg.cooldownSeconds * 1000) throw new KeyUnknown();
    // The fetch in flight started before this request, but most likely after the key was published.
    if (this.#inflight !== undefined) {
      await this.#inflight;
      const fetched = await this.#lookup(header, token);
      if (fetched !== undefined) return fetched;
    }
    await this.#refetchAfterArrival();
    const found = await this.#lookup(header, token);
    if (found !== undefined) return found;
    if (this.#lastAttemptFailed) throw new KeysUnavailable();
    this.#refused.delete(name);
    evictOldest(this.#refused, REFUSED_KIDS, 1);
    this.#refused.set(name, this.#deps.now());
    throw new KeyUnknown();
  }

  /** Joins the forced refetch that has not started yet, or schedules one. */
  #refetchAfterArrival(): Promise<void> {
    this.#pending ??= this.#forcedRefetch();
    return this.#pending;
  }

  /**
   * Starts one fetch after any in flight, no sooner than unknownKidIntervalMs after the last forced one
   * (nor before the back-off retry while failing), then waits for it. Gives up without fetching when
   * the back-off retry is further away than the interval: callers see the failure and answer 503.
   */
  async #forcedRefetch(): Promise<void> {
    const interval = this.#config.jwks.unknownKidIntervalMs;
    for (;;) {
      await this.#inflight; // also the first await: #pending is set before it is cleared below
      const start = Math.max(this.#lastForcedAt + interval, this.#lastAttemptFailed ? this.#nextAttemptAt : -Infinity);
      const wait = start - this.#deps.now();
      if (wait > interval) {
        this.#pending = undefined;
        return;
      }
      if (wait > 0) await (this.#deps.sleep ?? realSleep)(wait);
      if (this.#inflight === undefined) break; // else a fetch started while waiting, maybe before a waiter came
    }
    this.#pending = undefined;
    this.#lastForcedAt = this.#deps.now();
    await this.refresh();
  }

  #usable(now: number): boolean {
    return this.#resolver !== undefined && now < this.#expiresAt + this.#config.jwks.staleIfErrorSeconds * 1000;
  }

  /** Resolves once no fetch is in flight (without starting one). */
  async settled(): Promise<void> {
    while (this.#inflight !== undefined) await this.#inflight;
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
    let failure: FetchFailure | undefined;
    try {
      this.#jwksUri ??= await discoverJwksUri(this.#config);
      const fetched = await fetchJson(this.#jwksUri, cfg.timeoutMs, cfg.maxBytes);
      const keys = await this.#keysOf(fetched.body);
      const now = this.#deps.now();
      const lifetime = effectiveMaxAge(fetched.maxAgeSeconds, cfg.cacheMaxAgeSeconds) * 1000;
      const removed = this.#install(keys, fetched.body);
      this.#expiresAt = now + lifetime;
      this.#refreshAt = now + lifetime * 0.8;
      this.#lastAttemptFailed = false;
      this.#failures = 0;
      this.#lastError = undefined;
      this.#lastFailure = undefined;
      if (removed.size > 0) {
        this.#removals += 1;
        this.#deps.onKeysRemoved?.(this.#config.name, removed);
      }
    } catch (err) {
      if (err instanceof UnusableSet) result = err.result;
      else result = err instanceof FetchFailed ? err.code : 'network';
      this.#lastAttemptFailed = true;
      this.#nextAttemptAt = this.#lastAttemptAt + this.#backoff(++this.#failures);
      this.#lastError = err instanceof Error ? err.message : 'fetch failed';
      failure = describeFailure(result as FetchFailure['result'], err, this.#jwksUri);
      this.#lastFailure = failure;
      // Discovery is retried on the next attempt: the metadata may have been what failed.
      if (this.#config.jwksUri === undefined && this.#resolver === undefined) this.#jwksUri = undefined;
    } finally {
      this.#deps.onFetch?.(this.#config.name, result, failure);
    }
  }

  /** The keys of a fetched set this issuer may verify with; UnusableSet when there is none. */
  async #keysOf(body: unknown): Promise<JWK[]> {
    const listed = usableKeys(body, this.#config.algorithms);
    if (listed === undefined) throw new UnusableSet('invalid_shape', 'not a JWK Set');
    const own = await gatewayKeysIn(body, this.#deps.gatewayThumbprints);
    this.#gatewayKids = own.kids;
    if (own.kids.length > 0) this.#deps.onGatewayKey?.(this.#config.name, own.kids);
    const keys = listed.filter((k) => !own.dropped.has(k));
    // A 200 that leaves no key to verify with is an outage, not a rotation to nothing (issue 17 §2):
    // the last good keys keep serving within the stale window.
    if (keys.length === 0) throw new UnusableSet('no_usable_key', noUsableKeyMessage(body, this.#config.algorithms));
    return keys;
  }

  /** Makes `keys` the set in use; returns the kids that left. */
  #install(keys: readonly JWK[], body: unknown): ReadonlySet<string> {
    const kids = new Set(keys.map((k) => k.kid as string));
    const removed = new Set([...this.#kids].filter((kid) => !kids.has(kid)));
    this.#resolver = createLocalJWKSet({ keys } as JSONWebKeySet);
    this.#chosen = new Map();
    this.#kids = kids;
    this.#body = body;
    return removed;
  }

  /**
   * Reload with the same key source (issuer, jwksUri, gateway keys) but other issuer settings changed
   * (issue 17 §6): takes over `from`'s last good set, re-read under this config's algorithms, with its
   * times, back-off and refused kids, so no usable key is lost and no fetch is needed to serve. When
   * none of its keys fits the new algorithms this cache starts empty (start() fetches).
   */
  async adopt(from: IssuerKeys): Promise<void> {
    if (from.#body !== undefined) {
      try {
        this.#install(await this.#keysOf(from.#body), from.#body);
      } catch {
        return;
      }
    }
    this.#jwksUri = from.#jwksUri;
    this.#expiresAt = from.#expiresAt;
    this.#refreshAt = from.#refreshAt;
    this.#lastAttemptAt = from.#lastAttemptAt;
    this.#lastAttemptFailed = from.#lastAttemptFailed;
    this.#failures = from.#failures;
    this.#nextAttemptAt = from.#nextAttemptAt;
    this.#lastForcedAt = from.#lastForcedAt;
    this.#lastError = from.#lastError;
    this.#lastFailure = from.#lastFailure;
    for (const [name, at] of from.#refused) this.#refused.set(name, at);
  }

  /** Exponential from RETRY_BASE_MS, capped at retryMaxSeconds, with "equal jitter" in [d/2, d). */
  #backoff(failures: number): number {
    const cap = this.#config.jwks.retryMaxSeconds * 1000;
    const d = Math.min(cap, RETRY_BASE_MS * 2 ** Math.min(failures - 1, 20));
    return Math.round(d / 2 + (d / 2) * (this.#deps.random ?? Math.random)());
  }
}

/** The failure's URL is the one that failed (a metadata document, or the key set), never a credential. */
function describeFailure(result: FetchFailure['result'], err: unknown, jwksUri: string | undefined): FetchFailure {
  const error = err instanceof Error ? err.message : 'fetch failed';
  if (err instanceof FetchFailed) {
    return { result, error, ...(err.url === undefined ? {} : { url: err.url }), ...(err.status === undefined ? {} : { status: err.status }) };
  }
  // A fetched set with no usable key: the set's own URL.
  return { result, error, ...(jwksUri === undefined ? {} : { url: loggableUrl(jwksUri) }) };
}
