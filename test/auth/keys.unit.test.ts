import { afterEach, describe, expect, it } from 'vitest';
import { jwtVerify, type CryptoKey, type FlattenedJWSInput, type JWK } from 'jose';
import { loadConfigText } from '../../src/config/compile.ts';
import { IssuerKeys, KeysUnavailable, KeyUnknown, type FetchResult } from '../../src/auth/keys.ts';
import { TestIdp } from '../helpers/idp.ts';

// IssuerKeys alone, on an injected clock: a real JWKS server on 127.0.0.1 (TestIdp) answers the
// fetches, and every lifetime, cooldown and stale window is crossed by moving the clock, to the
// millisecond, never by waiting. No gateway: the class is driven through resolve(), refresh(),
// maintain() and status(), as the verifier and the refresh tick drive it. start() is never called,
// so no timer runs behind the test's back.

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
}

let idp: TestIdp | undefined;
afterEach(async () => {
  await idp?.close();
  idp = undefined;
});

/** A TestIdp and an IssuerKeys for it with these `jwks` settings (the rest as the schema defaults them). */
async function harness(jwks: Record<string, number>): Promise<Harness> {
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
  const keys = new IssuerKeys(issuer, {
    now: () => clock,
    onFetch: (_name, result) => {
      fetches.push(result);
      // onFetch runs inside the fetch; the next macrotask sees it finished (no longer in flight).
      for (const w of waiting.splice(0)) setImmediate(() => w(result));
    },
    onKeysRemoved: (_name, kids) => removed.push([...kids].sort()),
  });
  return {
    idp: server,
    keys,
    fetches,
    removed,
    advance: (ms) => {
      clock += ms;
    },
    nextFetch: () => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no key fetch finished within 5 s')), 5_000);
      waiting.push((result) => {
        clearTimeout(timer);
        resolve(result);
      });
    }),
    resolve: (kid, alg = 'RS256') => keys.resolve({ alg, kid }, NO_TOKEN),
  };
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
    await expect(h.resolve('k2', 'ES256')).rejects.toThrow(KeyUnknown);
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
  it('refetches once for an unknown kid, then not again within the cooldown whatever the kid, then once more', async () => {
    const h = await harness({ cooldownSeconds: 30 });
    await h.keys.refresh();
    await expect(h.resolve('x1')).rejects.toThrow(KeyUnknown);
    expect(h.idp.jwksRequests).toBe(2);
    await expect(h.resolve('x2')).rejects.toThrow(KeyUnknown);
    h.advance(29_999);
    await expect(h.resolve('x3')).rejects.toThrow(KeyUnknown);
    expect(h.idp.jwksRequests).toBe(2);

    h.advance(1);
    await h.idp.addKey('k2', 'ES256');
    expect((await h.resolve('k2', 'ES256')).type).toBe('public');
    expect(h.idp.jwksRequests).toBe(3);
    expect(h.fetches).toEqual(['ok', 'ok', 'ok']);
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
  it('serves the last good set up to staleIfErrorSeconds past its lifetime, then refuses every kid, then recovers', async () => {
    const h = await harness({ cacheMaxAgeSeconds: 10, staleIfErrorSeconds: 20 });
    await h.keys.refresh();
    h.idp.fault = { kind: 'status', status: 500 };

    h.advance(15_000);
    await h.keys.refresh();
    expect(h.fetches).toEqual(['ok', 'status']);
    expect(h.keys.status()).toEqual({ issuer: 'idp', usable: true, keys: 1, staleSeconds: 5, lastError: 'status 500' });
    const retried = h.nextFetch(); // a lookup while stale also retries, in the background
    expect((await h.resolve('k1')).type).toBe('public');
    expect(await retried).toBe('status');

    h.advance(14_999); // 29.999 s: the last millisecond of the stale window
    expect(h.keys.usable()).toBe(true);
    const lastRetry = h.nextFetch();
    expect((await h.resolve('k1')).type).toBe('public');
    expect(await lastRetry).toBe('status');
    const requests = h.idp.jwksRequests;

    h.advance(1); // 30 s = lifetime 10 + stale 20: fail closed
    expect(h.keys.usable()).toBe(false);
    expect(h.keys.status()).toMatchObject({ usable: false, keys: 1, staleSeconds: 20 });
    await expect(h.resolve('k1')).rejects.toThrow(KeysUnavailable); // within 1 s of the last attempt: no fetch
    h.advance(998);
    await expect(h.resolve('k1')).rejects.toThrow(KeysUnavailable);
    expect(h.idp.jwksRequests).toBe(requests);
    h.advance(1); // 1 s after the last attempt: one more, awaited, and it fails too
    await expect(h.resolve('k1')).rejects.toThrow(KeysUnavailable);
    expect(h.idp.jwksRequests).toBe(requests + 1);
    await expect(h.resolve('k1')).rejects.toThrow(KeysUnavailable);
    expect(h.idp.jwksRequests).toBe(requests + 1);

    h.idp.fault = { kind: 'ok' };
    h.advance(1_000);
    expect((await h.resolve('k1')).type).toBe('public');
    expect(h.idp.jwksRequests).toBe(requests + 2);
    expect(h.keys.status()).toEqual({ issuer: 'idp', usable: true, keys: 1, staleSeconds: 0, lastError: undefined });
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

  it('a cold start that fails refuses every lookup, retrying at most once a second, and serves once a fetch succeeds', async () => {
    const h = await harness({});
    h.idp.fault = { kind: 'body', body: '<html>', contentType: 'text/html' };
    await h.keys.refresh();
    expect(h.fetches).toEqual(['content_type']);
    expect(h.keys.status()).toEqual({ issuer: 'idp', usable: false, keys: 0, staleSeconds: 0, lastError: 'not a JSON content type' });
    await expect(h.resolve('k1')).rejects.toThrow(KeysUnavailable);
    expect(h.idp.jwksRequests).toBe(1);

    h.advance(1_000);
    await expect(h.resolve('k1')).rejects.toThrow(KeysUnavailable);
    expect(h.fetches).toEqual(['content_type', 'content_type']);
    h.keys.maintain(); // the refresh tick retries no faster either
    expect(h.idp.jwksRequests).toBe(2);

    h.idp.fault = { kind: 'ok' };
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
    expect(h.idp.jwksRequests).toBe(requests + 1); // the one unknown-kid refetch, nothing more
  });
});
