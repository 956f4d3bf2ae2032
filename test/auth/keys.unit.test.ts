import { afterEach, describe, expect, it, vi } from 'vitest';
import { errors, FlattenedSign, flattenedVerify, jwtVerify, type CryptoKey, type FlattenedJWSInput, type JSONWebKeySet, type JWK } from 'jose';
import { loadConfigText } from '../../src/config/compile.ts';
import { IssuerKeys, KeysUnavailable, KeyUnknown, type FetchResult } from '../../src/auth/keys.ts';
import { TestIdp } from '../helpers/idp.ts';

// IssuerKeys alone, on an injected clock: a real JWKS server on 127.0.0.1 (TestIdp) answers the
// fetches, and every lifetime, cooldown and stale window is crossed by moving the clock, to the
// millisecond, never by waiting. No gateway: the class is driven through resolve(), refresh(),
// maintain() and status(), as the verifier and the refresh tick drive it. start() is never called,
// so no timer runs behind the test's back.

// jose's own JWKS resolver, as is, except that a test may hold its answers back (gate.hold): the key
// is chosen at once from the set the lookup started with, and handed over when the test releases it,
// so that a lookup can be kept in flight while another set is installed.
const gate = vi.hoisted(() => ({ hold: undefined as Promise<void> | undefined }));
vi.mock('jose', async (importOriginal) => {
  const jose = await importOriginal<typeof import('jose')>();
  return {
    ...jose,
    createLocalJWKSet: (jwks: JSONWebKeySet) => {
      const inner = jose.createLocalJWKSet(jwks);
      const held: typeof inner = Object.assign(async (...args: Parameters<typeof inner>) => {
        const hold = gate.hold;
        const key = await inner(...args);
        if (hold !== undefined) await hold;
        return key;
      }, { jwks: inner.jwks });
      return held;
    },
  };
});

const T0 = 1_750_000_000_000;
const NO_TOKEN: FlattenedJWSInput = { payload: '', signature: '' };

interface Harness {
  readonly idp: TestIdp;
  readonly keys: IssuerKeys;
  /** Every fetch result, in order (onFetch). */
  readonly fetches: FetchResult[];
  /** Every onKeysRemoved report, as sorted kid lists. */
  readonly removed: string[][];
  /** Moves the injected clock by `ms`. */
  advance(ms: number): void;
  /** Resolves with the result of the next fetch to finish, once it is no longer in flight (at most 5 s). */
  nextFetch(): Promise<FetchResult>;
  /** The key for `kid`, as jose's verifier would ask for it. */
  resolve(kid: string, alg?: string): Promise<CryptoKey>;
  /** Every wait the keys asked for (injected sleep: it moves the clock by that much, at once). */
  readonly slept: number[];
  /** The jitter draw for the next back-offs, in [0, 1). */
  jitter: number;
}

let idp: TestIdp | undefined;
afterEach(async () => {
  await idp?.close();
  idp = undefined;
});

/** A TestIdp and an IssuerKeys for it with these `jwks` settings (the rest as the schema defaults them). */
async function harness(jwks: Record<string, number>, realClock = false): Promise<Harness> {
  const server = await TestIdp.start();
  idp = server;
  const issuer = loadConfigText(`
publicUrl: https://gw.test
issuers: [{ name: idp, issuer: "${server.issuer}", jwksUri: "${server.jwksUri}", algorithms: [RS256, ES256], jwks: ${JSON.stringify(jwks)} }]
upstreams: [{ name: u, path: /mcp, target: http://127.0.0.1:1/mcp, issuers: [idp] }]
identity: { signingKeyFile: /dev/null }
`).issuers[0];
  if (issuer === undefined) throw new Error('no issuer compiled');
  let clock = T0;
  const fetches: FetchResult[] = [];
  const removed: string[][] = [];
  const waiting: ((result: FetchResult) => void)[] = [];
  const slept: number[] = [];
  const h = { jitter: 0 };
  const keys = new IssuerKeys(issuer, realClock ? { now: Date.now, onFetch: (_name, result) => fetches.push(result) } : {
    now: () => clock,
    sleep: async (ms) => {
      slept.push(ms);
      clock += ms;
      await new Promise((resolve) => setImmediate(resolve));
    },
    random: () => h.jitter,
    onFetch: (_name, result) => {
      fetches.push(result);
      // onFetch runs inside the fetch; the next macrotask sees it finished (no longer in flight).
      for (const w of waiting.splice(0)) setImmediate(() => w(result));
    },
    onKeysRemoved: (_name, kids) => removed.push([...kids].sort()),
  });
  return Object.assign(h, {
    idp: server,
    keys,
    fetches,
    removed,
    slept,
    advance: (ms: number) => {
      clock += ms;
    },
    nextFetch: () => new Promise<FetchResult>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no key fetch finished within 5 s')), 5_000);
      waiting.push((result) => {
        clearTimeout(timer);
        resolve(result);
      });
    }),
    resolve: async (kid: string, alg = 'RS256') => keys.resolve({ alg, kid }, NO_TOKEN),
  });
}

describe('IssuerKeys: cache lifetime (cacheMaxAgeSeconds, Cache-Control max-age)', () => {
  it('serves every lookup from the cached set, and refreshes in the background from 80 % of the lifetime, one fetch at a time', async () => {
    const h = await harness({ cacheMaxAgeSeconds: 100, cooldownSeconds: 3_600 });
    await h.keys.refresh();
    expect(h.fetches).toEqual(['ok']);
    // The key works as jose's resolver: a token signed by k1 verifies with it.
    const token = await h.idp.sign({ sub: 'alice' });
    expect((await jwtVerify(token, h.keys.resolve)).payload.sub).toBe('alice');
    for (let i = 0; i < 5; i++) expect((await h.resolve('k1')).type).toBe('public');
    expect(h.idp.jwksRequests).toBe(1);

    // Spend the one unknown-kid refetch now, so that only the background refresh can learn of k2.
    await expect(h.resolve('not-published')).rejects.toThrow(KeyUnknown);
    expect(h.idp.jwksRequests).toBe(2);
    await h.idp.addKey('k2', 'ES256');

    h.advance(79_999);
    h.keys.maintain();
    expect(h.keys.hasKid('k2')).toBe(false);
    expect(h.idp.jwksRequests).toBe(2);

    h.advance(1); // 80 s of 100: refresh due
    const refreshed = h.nextFetch();
    h.keys.maintain();
    h.keys.maintain(); // a second tick while the first fetch runs starts no other
    expect(await refreshed).toBe('ok');
    expect(h.idp.jwksRequests).toBe(3);
    expect((await h.resolve('k2', 'ES256')).type).toBe('public');
    expect(h.idp.jwksRequests).toBe(3);
  });

  it('a lookup past 80 % of the lifetime answers from the cache and starts one background refresh', async () => {
    const h = await harness({ cacheMaxAgeSeconds: 100 });
    await h.keys.refresh();
    h.advance(80_000);
    const refreshed = h.nextFetch();
    expect((await h.resolve('k1')).type).toBe('public');
    expect(await refreshed).toBe('ok');
    expect(h.idp.jwksRequests).toBe(2);
  });

  it('honours a shorter Cache-Control max-age, never below 60 s, never above cacheMaxAgeSeconds; no-store counts as 0', async () => {
    const h = await harness({ cacheMaxAgeSeconds: 600, staleIfErrorSeconds: 3_600 });
    // [Cache-Control, the lifetime it must give]; read back as staleSeconds once the clock is past it.
    const table: [string | undefined, number][] = [
      [undefined, 600], ['max-age=100', 100], ['max-age=5', 60], ['max-age=0', 60], ['no-store', 60],
      ['public, max-age="90"', 90], ['max-age=86400', 600],
    ];
    for (const [cacheControl, lifetime] of table) {
      h.idp.cacheControl = cacheControl;
      await h.keys.refresh();
      h.advance(lifetime * 1000 + 7_000);
      expect({ cacheControl, stale: h.keys.status().staleSeconds }).toEqual({ cacheControl, stale: 7 });
    }
  });
});

describe('IssuerKeys: unknown kid (rotation) and cooldownSeconds', () => {
  it('refuses a kid its refetch did not find without fetching again for cooldownSeconds, per kid', async () => {
    const h = await harness({ cooldownSeconds: 30, unknownKidIntervalMs: 1_000 });
    await h.keys.refresh();
    await expect(h.resolve('x1')).rejects.toThrow(KeyUnknown);
    expect(h.idp.jwksRequests).toBe(2);
    for (let i = 0; i < 20; i++) await expect(h.resolve('x1')).rejects.toThrow(KeyUnknown);
    h.advance(29_999);
    await expect(h.resolve('x1')).rejects.toThrow(KeyUnknown);
    expect(h.idp.jwksRequests).toBe(2);
    expect(h.slept).toEqual([]);

    h.advance(1); // the kid's cooldown is over: one more refetch, which finds it now published
    await h.idp.addKey('x1', 'ES256');
    expect((await h.resolve('x1', 'ES256')).type).toBe('public');
    expect(h.idp.jwksRequests).toBe(3);
    expect(h.fetches).toEqual(['ok', 'ok', 'ok']);
  });

  it('under a flood of junk kids a key published before use loses no request, and the IdP sees at most one refetch per unknownKidIntervalMs', async () => {
    // Real time here: requests arrive while others wait for a refetch, as they do under load.
    const h = await harness({ cooldownSeconds: 30, unknownKidIntervalMs: 200 }, true);
    await h.keys.refresh();
    const started = Date.now();
    const junk: Promise<unknown>[] = [];
    const legit: Promise<unknown>[] = [];
    let published = false;
    // 2 s of flood, a fresh junk kid every 5 ms (200/s); the new key is published at 1 s and used from
    // 1 ms later, one lookup every 5 ms.
    while (Date.now() - started < 2_000) {
      junk.push(h.resolve(`junk-${junk.length}`).then(() => 'accepted', (err: unknown) => err));
      if (!published && Date.now() - started >= 1_000) {
        await h.idp.addKey('new', 'ES256');
        published = true;
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      if (published) legit.push(h.resolve('new', 'ES256').then(() => 'accepted', (err: unknown) => err));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const [j, l] = await Promise.all([Promise.all(junk), Promise.all(legit)]);
    const elapsedMs = Date.now() - started;
    expect(j.length).toBeGreaterThan(150);
    expect(j.every((r) => r instanceof KeyUnknown)).toBe(true); // every junk kid refused
    expect(l.length).toBeGreaterThan(50);
    expect(l.filter((r) => r !== 'accepted')).toEqual([]); // 0 valid lookups lost
    // One refetch per 200 ms at most, whatever the flood: ≤ 11 in the ~2.2 s, and the start-up fetch.
    expect(h.idp.jwksRequests - 1).toBeLessThanOrEqual(Math.ceil(elapsedMs / 200));
    expect(h.fetches.every((r) => r === 'ok')).toBe(true);
  });

  it('lets concurrent lookups of unknown kids share one refetch', async () => {
    const h = await harness({ cooldownSeconds: 30 });
    await h.keys.refresh();
    await h.idp.addKey('k2', 'ES256');
    const results = await Promise.allSettled([h.resolve('k2', 'ES256'), h.resolve('x1'), h.resolve('k2', 'ES256'), h.resolve('x2')]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(KeyUnknown);
    expect(h.idp.jwksRequests).toBe(2);
  });
});

describe('IssuerKeys: fetch failures (staleIfErrorSeconds, then fail closed)', () => {
  /**
   * Drives `h` from now to `untilMs` past T0 in 100 ms ticks, each with `perTick` lookups of k1 (as
   * every token the verified cache never saw asks) plus the refresh tick; returns the
   * clock (ms past T0) of every fetch attempt and the lookups' outcomes.
   */
  async function drive(h: Harness, now: { ms: number }, untilMs: number, perTick: number): Promise<{ attempts: number[]; outcomes: Map<string, number> }> {
    const attempts: number[] = [];
    const outcomes = new Map<string, number>();
    for (; now.ms < untilMs; now.ms += 100, h.advance(100)) {
      const before = h.fetches.length;
      const lookups = Array.from({ length: perTick }, () => h.resolve('k1'));
      h.keys.maintain();
      for (const r of await Promise.allSettled(lookups)) {
        const name = r.status === 'fulfilled' ? 'key' : (r.reason as Error).name;
        outcomes.set(name, (outcomes.get(name) ?? 0) + 1);
      }
      await h.keys.settled();
      for (let i = before; i < h.fetches.length; i++) attempts.push(now.ms);
    }
    return { attempts, outcomes };
  }

  it('retries a failing JWKS with jittered exponential back-off, one fetch at a time, whatever the traffic (1,000 lookups/s)', async () => {
    const h = await harness({ cacheMaxAgeSeconds: 10, staleIfErrorSeconds: 20, retryMaxSeconds: 8, unknownKidIntervalMs: 100 });
    await h.keys.refresh();
    h.idp.fault = { kind: 'status', status: 500 };
    const now = { ms: 0 };
    h.jitter = 0; // each delay is d/2 for d = 2 s, 4 s, 8 s, 8 s, … (retryMaxSeconds)
    const first = await drive(h, now, 20_000, 100);
    // An unknown kid while the IdP fails, the retry 3 s away: 503 (the key cannot be learned now), no fetch.
    const requests = h.idp.jwksRequests;
    await expect(h.resolve('fresh')).rejects.toThrow(KeysUnavailable);
    expect(h.idp.jwksRequests).toBe(requests);
    const rest = await drive(h, now, 30_000, 100);
    const stale = { attempts: [...first.attempts, ...rest.attempts], outcomes: new Map([['key', (first.outcomes.get('key') ?? 0) + (rest.outcomes.get('key') ?? 0)]]) };
    expect(first.outcomes.size + rest.outcomes.size).toBe(2);
    // The refresh is due at 8 s (80 % of 10); then retries 1, 2, 4, 4, 4 s apart: 7 fetches in 30 s
    // of 1,000 lookups/s, instead of one per uncached token.
    expect(stale.attempts).toEqual([8_000, 9_000, 11_000, 15_000, 19_000, 23_000, 27_000]);
    expect(stale.outcomes).toEqual(new Map([['key', 30_000]])); // every lookup served by the last good set
    expect(h.keys.status()).toMatchObject({ usable: false, staleSeconds: 20 });

    const closed = await drive(h, now, 35_000, 100); // fail closed: still one retry per back-off
    expect(closed.attempts).toEqual([31_000]);
    expect(closed.outcomes).toEqual(new Map([['KeysUnavailable', 5_000]]));
    h.idp.fault = { kind: 'ok' };
    const back = await drive(h, now, 36_000, 10); // the retry due at 35 s succeeds: recovered
    expect(back.attempts).toEqual([35_000]);
    expect(h.keys.status()).toMatchObject({ usable: true, staleSeconds: 0, lastError: undefined });
    expect(back.outcomes.get('KeysUnavailable')).toBeUndefined();
  });

  it('spreads the retries by the jitter draw: d × (0.5 + 0.5 × draw)', async () => {
    const h = await harness({ cacheMaxAgeSeconds: 10, staleIfErrorSeconds: 60, retryMaxSeconds: 8 });
    await h.keys.refresh();
    h.idp.fault = { kind: 'status', status: 500 };
    h.jitter = 0.5;
    const { attempts } = await drive(h, { ms: 0 }, 30_000, 1);
    expect(attempts.slice(1).map((t, i) => t - (attempts[i] as number))).toEqual([1_500, 3_000, 6_000, 6_000]);
  });

  it('with staleIfErrorSeconds 0 refuses as soon as the lifetime ends and the refresh fails', async () => {
    const h = await harness({ cacheMaxAgeSeconds: 10, staleIfErrorSeconds: 0 });
    await h.keys.refresh();
    h.advance(9_999);
    expect(h.keys.usable()).toBe(true);
    h.advance(1);
    expect(h.keys.usable()).toBe(false);
    h.idp.fault = { kind: 'status', status: 503 };
    await expect(h.resolve('k1')).rejects.toThrow(KeysUnavailable);
  });

  it('a cold start that fails refuses every lookup, retrying with back-off (1 s, then 2 s), and serves once a fetch succeeds', async () => {
    const h = await harness({});
    h.idp.fault = { kind: 'body', body: '<html>', contentType: 'text/html' };
    await h.keys.refresh();
    expect(h.fetches).toEqual(['content_type']);
    expect(h.keys.status()).toEqual({ issuer: 'idp', usable: false, keys: 0, staleSeconds: 0, lastError: 'not a JSON content type', reason: { result: 'content_type', error: 'not a JSON content type', url: h.idp.jwksUri } });
    await expect(h.resolve('k1')).rejects.toThrow(KeysUnavailable);
    expect(h.idp.jwksRequests).toBe(1);

    h.advance(1_000);
    await expect(h.resolve('k1')).rejects.toThrow(KeysUnavailable);
    expect(h.fetches).toEqual(['content_type', 'content_type']);
    h.keys.maintain(); // the refresh tick retries no faster either
    expect(h.idp.jwksRequests).toBe(2);

    h.idp.fault = { kind: 'ok' };
    h.advance(1_000);
    h.keys.maintain(); // back-off: the third attempt is due 2 s after the second
    expect(h.idp.jwksRequests).toBe(2);
    h.advance(1_000);
    const retried = h.nextFetch();
    h.keys.maintain();
    expect(await retried).toBe('ok');
    expect((await h.resolve('k1')).type).toBe('public');
  });

  it('keeps the last good set when a fetch answers with something that is not a JWK Set', async () => {
    const h = await harness({});
    await h.keys.refresh();
    for (const body of ['{"keys":{}}', '[]', 'null', '{"jwks":[]}']) {
      h.idp.fault = { kind: 'body', body };
      await h.keys.refresh();
    }
    expect(h.fetches).toEqual(['ok', 'invalid_shape', 'invalid_shape', 'invalid_shape', 'invalid_shape']);
    expect(h.keys.status()).toMatchObject({ usable: true, keys: 1, lastError: 'not a JWK Set' });
    expect(h.removed).toEqual([]);
    expect((await h.resolve('k1')).type).toBe('public');
  });
});

describe('IssuerKeys: what a JWKS may hold, and keys leaving it', () => {
  it('reports the kids a successful fetch no longer lists, once, through onKeysRemoved', async () => {
    const h = await harness({ cooldownSeconds: 1 });
    await h.idp.addKey('k2', 'ES256');
    await h.idp.addKey('k3', 'RS256');
    await h.keys.refresh();
    expect(h.keys.status().keys).toBe(3);

    h.idp.published.delete('k1');
    h.idp.published.delete('k3');
    await h.keys.refresh();
    expect(h.removed).toEqual([['k1', 'k3']]);
    expect(h.keys.status().keys).toBe(1);
    h.advance(1_000);
    await expect(h.resolve('k1')).rejects.toThrow(KeyUnknown);

    await h.keys.refresh(); // nothing more removed: no report
    h.idp.fault = { kind: 'status', status: 500 };
    await h.keys.refresh(); // a failed fetch removes nothing
    expect(h.removed).toEqual([['k1', 'k3']]);
    expect((await h.resolve('k2', 'ES256')).type).toBe('public');
  });

  it('keeps only asymmetric signing keys with a kid that fit the issuer\'s algorithms (RFC 7517 §4, §5)', async () => {
    const h = await harness({ cooldownSeconds: 3_600 });
    const rsa = (h.idp.keys.get('k1') as { publicJwk: JWK }).publicJwk;
    const es = (await h.idp.addKey('es', 'ES256', false)).publicJwk;
    const hostile: JWK[] = [
      { kty: 'oct', k: 'c2VjcmV0', kid: 'oct', alg: 'HS256' },
      { ...rsa, kid: 'private', d: 'AQAB' } as JWK,
      { ...rsa, kid: 'enc', use: 'enc' },
      { ...rsa, kid: 'rs512', alg: 'RS512' },
      { ...rsa, kid: 'ops', key_ops: ['encrypt'] },
      { ...rsa, kid: 'x'.repeat(257) },
      { ...rsa, kid: '' },
      { ...rsa, kid: 7 } as unknown as JWK,
      { ...rsa, kid: 'kty', kty: 'RSA-ish' },
    ];
    const good: JWK[] = [{ ...rsa, kid: 'rsa-ok', key_ops: ['verify'] }, { ...es, kid: 'es-ok' }, { ...rsa, kid: 'no-alg', alg: undefined }];
    h.idp.fault = { kind: 'body', body: JSON.stringify({ keys: [...hostile, 'not-a-key', null, [], ...good] }) };
    await h.keys.refresh();
    expect(h.fetches).toEqual(['ok']);
    expect(h.keys.status().keys).toBe(3);
    for (const kid of ['rsa-ok', 'no-alg']) expect((await h.resolve(kid)).type).toBe('public');
    expect((await h.resolve('es-ok', 'ES256')).type).toBe('public');
    const requests = h.idp.jwksRequests;
    for (const k of hostile) {
      // Looked up with an algorithm the issuer allows (or the key's own, RS512): the verifier refuses HS256 before any lookup.
      if (typeof k.kid === 'string' && k.kid !== '') await expect(h.resolve(k.kid, k.alg === 'RS512' ? 'RS512' : 'RS256'), k.kid).rejects.toThrow(KeyUnknown);
    }
    // One refetch per distinct unknown kid (7), each spaced by unknownKidIntervalMs; none verifies.
    expect(h.idp.jwksRequests).toBe(requests + 7);
    for (const k of hostile) if (typeof k.kid === 'string' && k.kid !== '') await expect(h.resolve(k.kid, k.alg === 'RS512' ? 'RS512' : 'RS256')).rejects.toThrow(KeyUnknown);
    expect(h.idp.jwksRequests).toBe(requests + 7); // refused again without a fetch (cooldownSeconds, per kid)
  });
});

describe('IssuerKeys: the key jose chose, taken again for the same (alg, kid)', () => {
  it('is the same CryptoKey for a kid already resolved, and is gone with the set that held it', async () => {
    const h = await harness({ cooldownSeconds: 1 });
    await h.idp.addKey('k2', 'ES256');
    await h.keys.refresh();
    const first = await h.resolve('k1');
    expect(await h.resolve('k1')).toBe(first);
    // Another algorithm for the same kid is asked of jose again, which refuses it (RSA key, ES256 header).
    await expect(h.resolve('k1', 'ES256')).rejects.toThrow(KeyUnknown);

    h.idp.published.delete('k1');
    await h.keys.refresh();
    expect(h.removed).toEqual([['k1']]);
    h.advance(1_000);
    await expect(h.resolve('k1')).rejects.toThrow(KeyUnknown);
    expect((await h.resolve('k2', 'ES256')).type).toBe('public');
  });

  it('keeps a header without kid apart from one with an empty kid, and remembers no choice among several keys', async () => {
    const h = await harness({ cooldownSeconds: 3_600 });
    await h.keys.refresh();
    // One RSA key: a kid-less RS256 header matches it (jose's rule) ...
    const kidless = await h.keys.resolve({ alg: 'RS256' }, NO_TOKEN);
    expect(kidless.type).toBe('public');
    // ... but an empty kid names a key that is not there, also after the kid-less choice was remembered.
    await expect(Promise.resolve(h.keys.resolve({ alg: 'RS256', kid: '' }, NO_TOKEN))).rejects.toThrow(KeyUnknown);
    // A second RSA key: a kid-less header now matches two, and jose's own answer (several keys) stands.
    await h.idp.addKey('k3', 'RS256');
    await h.keys.refresh();
    await expect(Promise.resolve(h.keys.resolve({ alg: 'RS256' }, NO_TOKEN))).rejects.toThrow(/multiple matching keys/i);
    await expect(Promise.resolve(h.keys.resolve({ alg: 'RS256' }, NO_TOKEN))).rejects.toThrow(/multiple matching keys/i);
  });
});

describe('IssuerKeys: a remembered key never outlives the set that held it', () => {
  const options = { algorithms: ['RS256', 'ES256'] };

  it('a kid republished with other key material, then with another algorithm, is verified with the new key only', async () => {
    const h = await harness({ cooldownSeconds: 1 });
    await h.keys.refresh();
    const oldToken = await h.idp.sign({ sub: 'old' });
    for (let i = 0; i < 2; i++) expect((await jwtVerify(oldToken, h.keys.resolve, options)).payload.sub).toBe('old'); // the second from memory

    await h.idp.addKey('k1', 'RS256'); // the same kid, a new RSA key
    await h.keys.refresh();
    expect(h.removed).toEqual([]); // the kid did not leave: nothing to report
    const rsaToken = await h.idp.sign({ sub: 'new' });
    expect((await jwtVerify(rsaToken, h.keys.resolve, options)).payload.sub).toBe('new');
    await expect(jwtVerify(oldToken, h.keys.resolve, options)).rejects.toThrow(errors.JWSSignatureVerificationFailed);

    await h.idp.addKey('k1', 'ES256'); // the same kid, now an EC key: RS256 under k1 names nothing
    await h.keys.refresh();
    const esToken = await h.idp.sign({ sub: 'es' });
    expect((await jwtVerify(esToken, h.keys.resolve, options)).payload.sub).toBe('es');
    await expect(jwtVerify(rsaToken, h.keys.resolve, options)).rejects.toThrow(KeyUnknown);
  });

  it('a lookup in flight while another set is installed answers from its own set, and leaves nothing for the new one', async () => {
    const h = await harness({});
    await h.keys.refresh();
    const oldToken = await h.idp.sign({ sub: 'old' });
    let release = (): void => undefined;
    gate.hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    const inFlight = h.resolve('k1'); // chosen in the first set, handed over only after the next install
    gate.hold = undefined;
    let answered = false;
    void inFlight.then(() => {
      answered = true;
    });
    await h.idp.addKey('k1', 'RS256'); // same kid, new material
    await h.keys.refresh();
    expect(answered).toBe(false); // still in flight across the install
    release();
    // The lookup that started before the install gets the key of its own set (as jose's resolver would) ...
    expect((await jwtVerify(oldToken, await inFlight, options)).payload.sub).toBe('old');
    // ... which the new set never hands out.
    const newToken = await h.idp.sign({ sub: 'new' });
    expect((await jwtVerify(newToken, h.keys.resolve, options)).payload.sub).toBe('new');
    await expect(jwtVerify(oldToken, h.keys.resolve, options)).rejects.toThrow(errors.JWSSignatureVerificationFailed);
  });

  it('a kid that is not a string is never taken for the string it prints as (the SET and federation paths do not check its type)', async () => {
    const h = await harness({ cooldownSeconds: 3_600 });
    await h.idp.addKey('7', 'RS256');
    await h.keys.refresh();
    expect((await jwtVerify(await h.idp.sign({ sub: 'seven' }, { kid: '7' }), h.keys.resolve, options)).payload.sub).toBe('seven');
    for (const kid of [7, ['7']]) {
      // Signed by the key published as "7": jose's resolver matches a kid only as a string.
      await expect(jwtVerify(await h.idp.sign({ sub: 'seven' }, { kid: '7', header: { kid } }), h.keys.resolve, options)).rejects.toThrow(KeyUnknown);
    }
  });

  it('a key chosen with a kid from an unprotected header is not remembered for a header without kid', async () => {
    const h = await harness({ cooldownSeconds: 3_600 });
    const k2 = await h.idp.addKey('k2', 'RS256');
    await h.keys.refresh();
    const payload = new TextEncoder().encode('{"sub":"flat"}');
    const flat = await new FlattenedSign(payload).setProtectedHeader({ alg: 'RS256' }).setUnprotectedHeader({ kid: 'k2' }).sign(k2.privateKey);
    expect((await flattenedVerify(flat, h.keys.resolve, options)).protectedHeader).toEqual({ alg: 'RS256' });
    // A compact token without kid, signed by k2: two RSA keys match it, jose's own answer stands.
    const kidless = await h.idp.sign({ sub: 'kidless' }, { kid: 'k2', header: { kid: undefined } });
    await expect(jwtVerify(kidless, h.keys.resolve, options)).rejects.toThrow(/multiple matching keys/i);
  });
});
