import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { loadConfigText, type UpstreamConfig } from '../../src/config/compile.ts';
import { IssuerKeys } from '../../src/auth/keys.ts';
import { TokenCache } from '../../src/auth/token-cache.ts';
import { createAuthenticator, type Authenticator } from '../../src/auth/verify.ts';
import { createIntrospector } from '../../src/auth/introspect.ts';
import { isDenial } from '../../src/reasons.ts';
import { TestIdp } from '../helpers/idp.ts';
import { RUNS, TIMEOUT_MS } from './runs.ts';

let idp: TestIdp;
let upstream: UpstreamConfig;
let authenticate: Authenticator;
let keys: IssuerKeys;
beforeAll(async () => {
  idp = await TestIdp.start();
  const config = loadConfigText(`
publicUrl: https://gw.test
issuers: [{ name: idp, issuer: "${idp.issuer}", jwksUri: "${idp.jwksUri}", algorithms: [RS256] }]
upstreams: [{ name: mcp, path: /mcp, target: http://127.0.0.1:1/mcp, issuers: [idp] }]
identity: { signingKeyFile: /dev/null }
`);
  upstream = config.upstreams[0] as UpstreamConfig;
  keys = new IssuerKeys(config.issuers[0] as never, { now: Date.now });
  await keys.refresh();
  // No verified-token cache: every mutation goes through the whole verification.
  authenticate = createAuthenticator({ keys: new Map([['idp', keys]]), cache: new TokenCache(0), introspect: createIntrospector(Date.now), now: Date.now });
});
afterAll(async () => {
  keys?.stop();
  await idp?.close();
});

describe('fuzz: JWT compact parsing and verification', () => {
  it('accepts the token unchanged and refuses every mutation of it, without throwing', async () => {
    const good = await idp.token('https://gw.test/mcp');
    expect(isDenial(await authenticate(good, upstream))).toBe(false);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ';
    const mutation = fc.oneof(
      fc.tuple(fc.nat(good.length - 1), fc.constantFrom(...alphabet)).map(([i, c]) => good.slice(0, i) + c + good.slice(i + 1)),
      fc.tuple(fc.nat(good.length - 1), fc.nat(40)).map(([i, n]) => good.slice(0, i) + good.slice(i + n + 1)),
      fc.tuple(fc.nat(good.length), fc.string({ maxLength: 10 })).map(([i, s]) => good.slice(0, i) + s + good.slice(i)),
      fc.string({ maxLength: 400 }),
    );
    const before = idp.jwksRequests;
    await fc.assert(fc.asyncProperty(mutation, async (token) => {
      const result = await authenticate(token, upstream);
      if (token === good) expect(isDenial(result)).toBe(false);
      else expect(isDenial(result)).toBe(true);
    }), { numRuns: RUNS });
    // Garbage never hammers the IdP: at most one unknown-kid refetch per cooldown.
    expect(idp.jwksRequests - before).toBeLessThanOrEqual(1);
  }, TIMEOUT_MS);
});
