import { afterEach, describe, expect, it, vi } from 'vitest';
import { hash } from 'node:crypto';
import { loadConfigText, type UpstreamConfig } from '../../src/config/compile.ts';
import { IssuerKeys } from '../../src/auth/keys.ts';
import { TokenCache } from '../../src/auth/token-cache.ts';
import { createAuthenticator } from '../../src/auth/verify.ts';
import { createIntrospector } from '../../src/auth/introspect.ts';
import { isDenial } from '../../src/reasons.ts';
import { TestIdp } from '../helpers/idp.ts';

// A signing key that leaves the issuer's JWKS while a token signed by it is being verified: the
// verification began with the key in the set and may finish, but the token must not enter the
// verified-token cache after the removal dropped that key's entries, or it would be accepted from
// the cache until it expires (found by the review of the key memo, a763df9).

// jwtVerify as jose's, except that it can be held after the signature checked out (a real one).
const gate: { hold: Promise<void> | undefined; reached: (() => void) | undefined } = { hold: undefined, reached: undefined };
vi.mock('jose', async (importOriginal) => {
  const jose = await importOriginal<typeof import('jose')>();
  return {
    ...jose,
    jwtVerify: async (...args: Parameters<typeof jose.jwtVerify>) => {
      const hold = gate.hold;
      const result = await jose.jwtVerify(...args);
      gate.reached?.();
      if (hold !== undefined) await hold;
      return result;
    },
  };
});

let idp: TestIdp | undefined;
let keys: IssuerKeys | undefined;
afterEach(async () => {
  keys?.stop();
  await idp?.close();
  gate.hold = undefined;
  gate.reached = undefined;
});

describe('a key removed while a token signed by it is being verified', () => {
  it('lets that verification finish but keeps the token out of the cache: the next request with it is refused', async () => {
    idp = await TestIdp.start();
    const config = loadConfigText(`
publicUrl: https://gw.test
issuers: [{ name: idp, issuer: "${idp.issuer}", jwksUri: "${idp.jwksUri}", algorithms: [RS256, ES256], jwks: { cooldownSeconds: 1 } }]
upstreams: [{ name: mcp, path: /mcp, target: http://127.0.0.1:1/mcp, issuers: [idp] }]
identity: { signingKeyFile: /dev/null }
`);
    const upstream = config.upstreams[0] as UpstreamConfig;
    const cache = new TokenCache(100);
    const issuerKeys = new IssuerKeys(config.issuers[0] as never, { now: Date.now, onKeysRemoved: (name, kids) => cache.dropKeys(name, kids) });
    keys = issuerKeys;
    await issuerKeys.refresh();
    const authenticate = createAuthenticator({ keys: new Map([['idp', issuerKeys]]), cache, introspect: createIntrospector(Date.now), now: Date.now });
    const token = await idp.token(upstream.audience);

    let release: () => void = () => undefined;
    gate.hold = new Promise<void>((r) => (release = r));
    const reached = new Promise<void>((r) => (gate.reached = r));
    const first = Promise.resolve(authenticate(token, upstream));
    await reached; // the signature verified with k1; the result is held

    // Rotation away from k1 lands now: the removal is reported (and k1's cache entries dropped) first.
    await idp.addKey('k2', 'ES256');
    idp.published.delete('k1');
    await issuerKeys.refresh();
    expect(issuerKeys.hasKid('k1')).toBe(false);
    release();

    const principal = await first;
    expect(isDenial(principal)).toBe(false);
    expect(cache.get(hash('sha256', token, 'hex'), upstream.name, Date.now())).toBeUndefined();
    gate.hold = undefined;
    await new Promise((r) => setTimeout(r, 1_100)); // past the unknown-kid interval: the refetch finds no k1
    const again = await authenticate(token, upstream);
    expect(isDenial(again) ? again.reason : 'accepted').toBe('key_unknown');
  });
});
