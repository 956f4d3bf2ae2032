import { beforeEach, describe, expect, it } from 'vitest';
import { CompactSign, decodeJwt, type CryptoKey } from 'jose';
import { PUBLIC_URL } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { bearerProbe } from '../helpers/refused.ts';

// security-cases.md, category time-skew (SC-070..075). The gateway runs on an injected clock and every
// token's iat/exp/nbf is written relative to it, so each boundary is tested to the second, never by
// racing the wall clock. Upstreams: /mcp (skew S = 30 s), /zero-mcp (skew 0), /age-mcp (maxTokenAge
// 24 h, skew 30 s, lifetime up to 3 days), /slow-mcp (skew 0, upstream path /slow), /short-mcp (skew 30 s,
// maxTokenLifetimeSeconds 1 h); every other issuer has the default maximum lifetime of 24 h.

const S = 30;
const DAY = 86_400;

let clock = Math.floor(Date.now() / 1000) * 1000;
const nowS = (): number => Math.floor(clock / 1000);

const fx = useGatewayFixture({
  config: (_base, idp, upstream) => {
    const issuer = (name: string, extra: Record<string, unknown>): Record<string, unknown> =>
      ({ name, issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'], ...extra });
    const route = (name: string, issuerName: string, target = `${upstream.url}/echo/${name}`): Record<string, unknown> =>
      ({ name, path: name === 'mcp' ? '/mcp' : `/${name}-mcp`, target, issuers: [issuerName], scopes: ['mcp:tools'] });
    return {
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      publicUrl: PUBLIC_URL,
      issuers: [issuer('skew', { clockSkewSeconds: S }), issuer('zero', { clockSkewSeconds: 0 }), issuer('age', { clockSkewSeconds: S, maxTokenAgeSeconds: DAY, maxTokenLifetimeSeconds: 3 * DAY }), issuer('short', { clockSkewSeconds: S, maxTokenLifetimeSeconds: 3_600 })],
      upstreams: [route('mcp', 'skew'), route('zero', 'zero'), route('age', 'age'), route('slow', 'zero', `${upstream.url}/slow`), route('short', 'short')],
      identity: { signingKeyFile: 'gateway.jwk' },
    };
  },
  now: () => clock,
});
beforeEach(() => fx.upstream.reset());

const aud = (path: string): string => PUBLIC_URL + path;
/** A GOOD token for `path` with its time claims set relative to the gateway's clock. */
const token = (path: string, times: { iat?: number; exp?: number; nbf?: number }): Promise<string> =>
  fx.idp.sign({ iss: fx.idp.issuer, aud: aud(path), sub: 'alice', client_id: 'test-client', scope: 'mcp:tools', iat: nowS(), exp: nowS() + 300, jti: `j-${Math.random()}`, ...times });
const { post, expectRefused, expectForwarded } = bearerProbe(fx, { now: () => clock, resetBeforeRefusal: true, sub: 'alice' });
/** A K1-signed token whose payload is exactly `json` (JSON.stringify cannot spell 1e309 or -0). */
const rawToken = (json: string): Promise<string> =>
  new CompactSign(new TextEncoder().encode(json)).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(fx.idp.keys.get('k1')?.privateKey as CryptoKey);
const goodJson = (path: string, times: string): string =>
  `{"iss":${JSON.stringify(fx.idp.issuer)},"aud":${JSON.stringify(aud(path))},"sub":"alice","client_id":"test-client","scope":"mcp:tools",${times}}`;

describe('time skew (RFC 7519 §4.1.4-4.1.6, on an injected clock)', () => {
  it('SC-070 refuses exp = now exactly when the tolerance is 0 ("on or after exp MUST NOT be accepted")', async () => {
    await expectRefused(await token('/zero-mcp', { exp: nowS() }), 'token_expired', '/zero-mcp');
    await expectRefused(await token('/zero-mcp', { exp: nowS() - 1 }), 'token_expired', '/zero-mcp');
    // One second later is still valid: the boundary is exactly at exp.
    await expectForwarded(await token('/zero-mcp', { exp: nowS() + 1 }), '/zero-mcp');
  });

  it('SC-071 with skew S = 30 s accepts exp = now - (S-1) and refuses exp = now - S and now - (S+1)', async () => {
    await expectForwarded(await token('/mcp', { exp: nowS() - (S - 1) }), '/mcp');
    await expectRefused(await token('/mcp', { exp: nowS() - S }), 'token_expired', '/mcp');
    await expectRefused(await token('/mcp', { exp: nowS() - (S + 1) }), 'token_expired', '/mcp');
  });

  it('SC-072 with skew S = 30 s accepts nbf = now, now + (S-1) and now + S, and refuses nbf = now + (S+1)', async () => {
    await expectForwarded(await token('/mcp', { nbf: nowS() }), '/mcp');
    await expectForwarded(await token('/mcp', { nbf: nowS() + (S - 1) }), '/mcp');
    await expectForwarded(await token('/mcp', { nbf: nowS() + S }), '/mcp');
    await expectRefused(await token('/mcp', { nbf: nowS() + (S + 1) }), 'token_not_yet_valid', '/mcp');
  });

  it('SC-073 refuses a token issued 30 days ago though exp is a day ahead (maxTokenAge 24 h), and one without iat', async () => {
    await expectRefused(await token('/age-mcp', { iat: nowS() - 30 * DAY, exp: nowS() + DAY }), 'token_too_old', '/age-mcp');
    // The age boundary, with the issuer's 30 s skew: 24 h + S old is accepted, one second more is not.
    await expectForwarded(await token('/age-mcp', { iat: nowS() - DAY - S, exp: nowS() + DAY }), '/age-mcp');
    await expectRefused(await token('/age-mcp', { iat: nowS() - DAY - S - 1, exp: nowS() + DAY }), 'token_too_old', '/age-mcp');
    // Without iat a token cannot prove its age.
    await expectRefused(await token('/age-mcp', { iat: undefined, exp: nowS() + DAY }), 'claims_invalid', '/age-mcp');
  });

  it('SC-193 refuses exp, nbf and iat that are not finite non-negative NumericDates (exp 1e309 would never expire)', async () => {
    const n = nowS();
    for (const times of [
      '"exp":1e309', `"iat":${n},"exp":1e309`, '"exp":-1', '"exp":-1e309', `"exp":${n + 300},"nbf":-1e309`, `"exp":${n + 300},"nbf":-1`,
      `"exp":${n + 300},"iat":1e309`, `"exp":${n + 300},"iat":-5`, `"exp":${n + 300},"iat":"${n}"`, `"exp":${n + 300},"nbf":null`, `"exp":${n + 300},"iat":true`,
    ]) {
      await expectRefused(await rawToken(goodJson('/mcp', times)), 'claims_invalid', '/mcp');
    }
    await expectForwarded(await rawToken(goodJson('/mcp', `"iat":${n},"exp":${n + 300}`)), '/mcp');
  });

  it('SC-193 refuses iat later than now + skew as not yet valid (S = 30 s: now + S passes, now + S + 1 does not)', async () => {
    await expectForwarded(await token('/mcp', { iat: nowS() + S }), '/mcp');
    await expectRefused(await token('/mcp', { iat: nowS() + S + 1 }), 'token_not_yet_valid', '/mcp');
    await expectRefused(await token('/mcp', { iat: nowS() + DAY, exp: nowS() + DAY + 60 }), 'token_not_yet_valid', '/mcp');
  });

  it('SC-193 refuses a lifetime over 24 h by default: exp − iat, or exp − now (+ skew) without iat', async () => {
    await expectForwarded(await token('/mcp', { iat: nowS(), exp: nowS() + DAY }), '/mcp');
    await expectRefused(await token('/mcp', { iat: nowS(), exp: nowS() + DAY + 1 }), 'token_lifetime_exceeded', '/mcp');
    // An old iat with a far exp is judged by exp − iat, not by the time left.
    await expectRefused(await token('/mcp', { iat: nowS() - DAY, exp: nowS() + 60 }), 'token_lifetime_exceeded', '/mcp');
    await expectForwarded(await token('/mcp', { iat: undefined, exp: nowS() + DAY + S }), '/mcp');
    await expectRefused(await token('/mcp', { iat: undefined, exp: nowS() + DAY + S + 1 }), 'token_lifetime_exceeded', '/mcp');
    await expectRefused(await token('/mcp', { iat: nowS(), exp: 4_102_444_800 }), 'token_lifetime_exceeded', '/mcp'); // 2100-01-01
  });

  it('SC-193 refuses millisecond timestamps (exp and iat in ms, or exp alone)', async () => {
    const ms = clock;
    await expectRefused(await token('/mcp', { iat: ms, exp: ms + 300_000 }), 'token_not_yet_valid', '/mcp');
    await expectRefused(await token('/mcp', { iat: nowS(), exp: ms + 300_000 }), 'token_lifetime_exceeded', '/mcp');
    await expectRefused(await token('/mcp', { iat: undefined, exp: ms + 300_000 }), 'token_lifetime_exceeded', '/mcp');
  });

  it('SC-193 applies a per-issuer maxTokenLifetimeSeconds lowered to 1 h', async () => {
    await expectForwarded(await token('/short-mcp', { iat: nowS(), exp: nowS() + 3_600 }), '/short-mcp');
    await expectRefused(await token('/short-mcp', { iat: nowS(), exp: nowS() + 3_601 }), 'token_lifetime_exceeded', '/short-mcp');
    await expectRefused(await token('/short-mcp', { iat: undefined, exp: nowS() + 3_600 + S + 1 }), 'token_lifetime_exceeded', '/short-mcp');
  });

  it('SC-075 admits a token that expires while the upstream is still answering; the assertion never outlives the token', async () => {
    // Documented behaviour: the token is validated when the request is admitted. A non-streaming answer
    // that arrives after the token's exp is still delivered (only SSE streams are cut at exp). The
    // upstream itself only ever sees an assertion whose exp is no later than the token's.
    fx.upstream.slowMs = 600;
    const exp = nowS() + 2;
    const jwt = await token('/slow-mcp', { exp });
    const answered = post(jwt, '/slow-mcp');
    for (let i = 0; i < 200 && fx.upstream.received.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(fx.upstream.received).toHaveLength(1); // admitted and forwarded; the answer is still pending
    clock += 5_000; // the upstream "takes 5 s": by the gateway's clock the token is now expired
    const r = await answered;
    expect(r.status).toBe(200);
    expect(r.body).toEqual({});
    expect(fx.upstream.received).toHaveLength(1);
    const seen = fx.upstream.received[0]?.headers;
    expect(seen?.has('authorization')).toBe(false);
    expect(seen?.get('x-mcp-identity')).toHaveLength(1);
    const assertion = decodeJwt(seen?.get('x-mcp-identity')?.[0] as string);
    expect(assertion.exp).toBeLessThanOrEqual(exp);
    expect(assertion['orig_exp']).toBe(exp);
    // The same token presented now, after its exp, is refused: admission is where expiry is judged.
    await expectRefused(jwt, 'token_expired', '/slow-mcp');
  });
});
