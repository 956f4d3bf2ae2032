import { randomBytes } from 'node:crypto';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { jwtVerify, SignJWT } from 'jose';
import { AUD, PUBLIC_URL } from '../helpers/gateway.ts';
import { gatewayKeySet, useGatewayFixture } from '../helpers/fixture.ts';
import { expectNothingForwarded, expectRefusedReply, invalidTokenChallenge } from '../helpers/refused.ts';
import { athOf, dpopKey, proofFor, type DpopKey } from '../helpers/dpop.ts';
import { MCP_POST_HEADERS, RPC } from '../helpers/rpc.ts';
import { sendExact, type Reply } from '../helpers/wire.ts';
import { reasons, type Reason } from '../../src/reasons.ts';

// RFC 9449 at the gateway. /dpop-mcp requires DPoP (senderConstraint: dpop); /mcp does not, but a
// token bound with cnf.jkt is held to its key there too. Every proof is made with jose by a small client
// (test/helpers/dpop.ts); every refusal asserts status, the exact challenge and that the upstream got nothing.

const PATH = '/dpop-mcp';
const AUD_DPOP = `${PUBLIC_URL}${PATH}`;
const HTU = AUD_DPOP;
const ALGS = 'ES256 EdDSA PS256 RS256';
const prm = (path: string): string => `${PUBLIC_URL}/.well-known/oauth-protected-resource${path}`;

/** RFC 9449 §7.1 challenge for `reason` on `path`, with resource metadata, scope and algs. */
function dpopChallenge(reason: Reason | undefined, path = PATH): string {
  const error = reason === undefined ? '' : `, error="${reasons[reason].oauthError}", error_description="${reasons[reason].description}"`;
  return `DPoP resource_metadata="${prm(path)}"${error}, scope="mcp:tools", algs="${ALGS}"`;
}

const fx = useGatewayFixture({
  config: (config, _idp, upstream) => {
    (config['upstreams'] as unknown[]).push(
      { name: 'dpop', path: PATH, target: `${upstream.url}/echo/dpop`, issuers: ['idp'], scopes: ['mcp:tools'], senderConstraint: 'dpop' },
      { name: 'dpop-sse', path: '/dpop-sse', target: `${upstream.url}/sse`, issuers: ['idp'], scopes: ['mcp:tools'], senderConstraint: 'dpop' },
    );
    return config;
  },
});
beforeEach(() => fx.upstream.reset());

let key: DpopKey;
let other: DpopKey;
beforeAll(async () => {
  key = await dpopKey('ES256');
  other = await dpopKey('ES256');
});

const port = (): number => fx.port;
const bound = (k: DpopKey = key, aud = AUD_DPOP): Promise<string> => fx.idp.token(aud, { cnf: { jkt: k.jkt } });

/** POST tools/list to `path` with exactly these extra headers (duplicates and Host kept as given). */
function post(headers: readonly (readonly [string, string])[], path = PATH): Promise<Reply> {
  return sendExact(port(), 'POST', path, [...Object.entries(MCP_POST_HEADERS), ...headers], RPC);
}
const withDpop = (token: string, proof: string): [string, string][] => [['Authorization', `DPoP ${token}`], ['DPoP', proof]];

async function expectDpopRefused(reply: Reply, reason: Reason, path = PATH): Promise<void> {
  expectRefusedReply(fx.upstream, reply, 401, reason, dpopChallenge(reason, path));
}

describe('DPoP proofs (RFC 9449 §4.3, §7.1)', () => {
  it('forwards a DPoP-bound token with a valid proof, and the assertion says possession was proven with that key', async () => {
    const token = await bound();
    const reply = await post(withDpop(token, await proofFor(key, { htm: 'POST', htu: HTU, token })));
    expect(reply.status, reply.text).toBe(200);
    expect(fx.upstream.received).toHaveLength(1);
    const seen = fx.upstream.received[0]?.headers;
    expect(seen?.has('authorization')).toBe(false);
    expect(seen?.has('dpop')).toBe(false);
    const { payload } = await jwtVerify(seen?.get('x-mcp-identity')?.[0] as string, await gatewayKeySet(fx.gw), { issuer: PUBLIC_URL, audience: AUD_DPOP, typ: 'mcp-identity+jwt' });
    expect(payload).toMatchObject({ sub: 'alice', sender: 'dpop', sender_jkt: key.jkt });
    expect(payload['cnf']).toBeUndefined();
  });

  it('checks the proof on every request, also when the token itself comes from the verified-token cache', async () => {
    const token = await bound();
    const first = await proofFor(key, { htm: 'POST', htu: HTU, token });
    expect((await post(withDpop(token, first))).status).toBe(200);
    expect((await post(withDpop(token, await proofFor(key, { htm: 'POST', htu: HTU, token })))).status).toBe(200);
    fx.upstream.reset();
    await expectDpopRefused(await post([['Authorization', `DPoP ${token}`]]), 'dpop_invalid');
    await expectDpopRefused(await post(withDpop(token, first)), 'dpop_replayed');
  });

  it('still refuses a replayed proof after a configuration reload (the jti cache is carried over)', async () => {
    const token = await bound();
    const proof = await proofFor(key, { htm: 'POST', htu: HTU, token });
    expect((await post(withDpop(token, proof))).status).toBe(200);
    expect(await fx.gw.gateway.reloadFromFile()).toBe(true);
    fx.upstream.reset();
    await expectDpopRefused(await post(withDpop(token, proof)), 'dpop_replayed');
  });

  it('refuses a replayed proof (same jti) even on its first reuse, and accepts a new jti', async () => {
    const token = await bound();
    const jti = `j-${Math.random()}`;
    expect((await post(withDpop(token, await proofFor(key, { htm: 'POST', htu: HTU, token, jti })))).status).toBe(200);
    fx.upstream.reset();
    await expectDpopRefused(await post(withDpop(token, await proofFor(key, { htm: 'POST', htu: HTU, token, jti }))), 'dpop_replayed');
  });

  it('refuses a proof for another method (htm)', async () => {
    const token = await bound();
    for (const htm of ['GET', 'post', 'DELETE']) await expectDpopRefused(await post(withDpop(token, await proofFor(key, { htm, htu: HTU, token }))), 'dpop_invalid');
  });

  it('refuses a proof for another URL (htu), compared on publicUrl and never on Host', async () => {
    const token = await bound();
    const listen = `http://127.0.0.1:${port()}${PATH}`;
    for (const htu of [listen, `${PUBLIC_URL}/mcp`, `${PUBLIC_URL}${PATH}/x`, 'https://evil.test/dpop-mcp', 'not a url']) {
      await expectDpopRefused(await post(withDpop(token, await proofFor(key, { htm: 'POST', htu, token }))), 'dpop_invalid');
    }
    // The Host trick: a client that says Host: evil.test cannot make a proof for evil.test pass.
    const tricked = await post([['Host', 'evil.test'], ...withDpop(token, await proofFor(key, { htm: 'POST', htu: 'https://evil.test/dpop-mcp', token }))]);
    await expectDpopRefused(tricked, 'dpop_invalid');
    // RFC 9449 §4.3: scheme and host case and the default port are normalised; the query is ignored.
    expect((await post(withDpop(token, await proofFor(key, { htm: 'POST', htu: 'HTTPS://GW.TEST:443/dpop-mcp', token })))).status).toBe(200);
  });

  it('refuses a proof whose iat is outside the window (stale or in the future)', async () => {
    const token = await bound();
    const now = Math.floor(Date.now() / 1000);
    for (const iat of [now - 120, now + 60]) await expectDpopRefused(await post(withDpop(token, await proofFor(key, { htm: 'POST', htu: HTU, token, iat }))), 'dpop_invalid');
  });

  it('refuses a proof without ath, or with the ath of another token', async () => {
    const token = await bound();
    const another = await bound();
    await expectDpopRefused(await post(withDpop(token, await proofFor(key, { htm: 'POST', htu: HTU, token: undefined }))), 'dpop_invalid');
    await expectDpopRefused(await post(withDpop(token, await proofFor(key, { htm: 'POST', htu: HTU, token: another }))), 'dpop_invalid');
  });

  it('refuses a proof signed with another key than the one the token is bound to (thumbprint ≠ cnf.jkt)', async () => {
    const token = await bound(key);
    await expectDpopRefused(await post(withDpop(token, await proofFor(other, { htm: 'POST', htu: HTU, token }))), 'token_binding_mismatch');
    // The audit line names whose token was used without its key (and never the token).
    await expect.poll(() => fx.gw.logs.find((l) => l.includes('"token_binding_mismatch"'))).toBeDefined();
    const line = JSON.parse(fx.gw.logs.find((l) => l.includes('"token_binding_mismatch"')) as string) as Record<string, unknown>;
    expect(line).toMatchObject({ sub: 'alice', reason: 'token_binding_mismatch' });
    expect(JSON.stringify(line)).not.toContain(token);
    // The bound key's jwk in the header, signed by another key: the thumbprint matches, the signature does not.
    await expectDpopRefused(await post(withDpop(token, await proofFor({ ...other, publicJwk: key.publicJwk }, { htm: 'POST', htu: HTU, token }))), 'dpop_invalid');
  });

  it('once a key was accepted (its import cached), still verifies every signature and binds every token to its own key', async () => {
    const token = await bound(key);
    expect((await post(withDpop(token, await proofFor(key, { htm: 'POST', htu: HTU, token })))).status).toBe(200);
    fx.upstream.reset();
    // The cached jwk, signed by another key: refused on the signature.
    await expectDpopRefused(await post(withDpop(token, await proofFor({ ...other, publicJwk: key.publicJwk }, { htm: 'POST', htu: HTU, token }))), 'dpop_invalid');
    // The cached key's proof for a token bound to another key: refused on the thumbprint.
    const otherToken = await bound(other);
    await expectDpopRefused(await post(withDpop(otherToken, await proofFor(key, { htm: 'POST', htu: HTU, token: otherToken }))), 'token_binding_mismatch');
    // The cached jwk with a `use` member jose refuses for a signature: another entry, imported and refused.
    await expectDpopRefused(await post(withDpop(token, await proofFor(key, { htm: 'POST', htu: HTU, token, header: { jwk: { ...key.publicJwk, use: 'enc' } } }))), 'dpop_invalid');
    expect((await post(withDpop(token, await proofFor(key, { htm: 'POST', htu: HTU, token })))).status).toBe(200);
  });

  it('refuses a proof whose header jwk carries the private key', async () => {
    const token = await bound();
    await expectDpopRefused(await post(withDpop(token, await proofFor(key, { htm: 'POST', htu: HTU, token, header: { jwk: key.privateJwk } }))), 'dpop_invalid');
  });

  it('refuses a proof with a symmetric algorithm, alg none, or an algorithm off the allow-list', async () => {
    const token = await bound();
    const secret = randomBytes(32);
    const hs = await new SignJWT({ htm: 'POST', htu: HTU, iat: Math.floor(Date.now() / 1000), jti: 'hs', ath: athOf(token) })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'HS256', jwk: { kty: 'oct', k: secret.toString('base64url') } } as Parameters<SignJWT['setProtectedHeader']>[0])
      .sign(secret);
    await expectDpopRefused(await post(withDpop(token, hs)), 'dpop_invalid');
    const es512 = await dpopKey('ES512');
    const es512Token = await bound(es512);
    await expectDpopRefused(await post(withDpop(es512Token, await proofFor(es512, { htm: 'POST', htu: HTU, token: es512Token }))), 'dpop_invalid');
  });

  it('refuses a proof with another typ, and a proof that is not a JWT', async () => {
    const token = await bound();
    for (const typ of ['JWT', 'DPoP+JWT', 'at+jwt']) await expectDpopRefused(await post(withDpop(token, await proofFor(key, { htm: 'POST', htu: HTU, token, header: { typ } }))), 'dpop_invalid');
    await expectDpopRefused(await post(withDpop(token, 'not-a-jwt')), 'dpop_invalid');
  });

  it('refuses two DPoP headers, and the DPoP scheme with no DPoP header', async () => {
    const token = await bound();
    const proof = await proofFor(key, { htm: 'POST', htu: HTU, token });
    await expectDpopRefused(await post([...withDpop(token, proof), ['DPoP', await proofFor(key, { htm: 'POST', htu: HTU, token })]]), 'dpop_invalid');
    await expectDpopRefused(await post([['Authorization', `DPoP ${token}`]]), 'dpop_invalid');
    // RFC 9449 §7.2: Bearer and DPoP Authorization headers together are one credential too many (400).
    const both = await post([['Authorization', `Bearer ${token}`], ...withDpop(token, proof)]);
    expectRefusedReply(fx.upstream, both, 400, 'token_duplicate', `DPoP resource_metadata="${prm(PATH)}", error="invalid_request", error_description="${reasons.token_duplicate.description}", scope="mcp:tools", algs="${ALGS}"`);
  });

  it('refuses the DPoP scheme with a token that is not DPoP-bound', async () => {
    const token = await fx.idp.token(AUD_DPOP);
    await expectDpopRefused(await post(withDpop(token, await proofFor(key, { htm: 'POST', htu: HTU, token }))), 'token_binding_mismatch');
  });
});

describe('DPoP streams', () => {
  it('opens an SSE stream with a proof for GET (one proof at the open, none per event), and refuses a POST proof for it', async () => {
    const token = await fx.idp.token(`${PUBLIC_URL}/dpop-sse`, { cnf: { jkt: key.jkt } });
    const get = async (htm: string): Promise<Reply> => sendExact(port(), 'GET', '/dpop-sse', [['Accept', 'text/event-stream'], ...withDpop(token, await proofFor(key, { htm, htu: `${PUBLIC_URL}/dpop-sse`, token }))]);
    const refused = await get('POST');
    expectRefusedReply(fx.upstream, refused, 401, 'dpop_invalid', dpopChallenge('dpop_invalid', '/dpop-sse'));
    const stream = await get('GET');
    expect(stream.status, stream.text).toBe(200);
    expect(stream.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(stream.text).toContain('data: {"n":0}');
    expect(fx.upstream.received).toHaveLength(1);
  });
});

describe('Bearer and DPoP-bound tokens (RFC 9449 §7.2)', () => {
  it('refuses a DPoP-bound token sent as Bearer, also where the upstream does not require DPoP', async () => {
    await expectDpopRefused(await post([['Authorization', `Bearer ${await bound()}`]]), 'dpop_required');
    const token = await bound(key, AUD);
    await expectDpopRefused(await post([['Authorization', `Bearer ${token}`], ['DPoP', await proofFor(key, { htm: 'POST', htu: AUD, token })]], '/mcp'), 'dpop_required', '/mcp');
  });

  it('refuses an unbound Bearer token where the upstream requires DPoP, with a DPoP challenge', async () => {
    await expectDpopRefused(await post([['Authorization', `Bearer ${await fx.idp.token(AUD_DPOP)}`]]), 'dpop_required');
  });

  it('refuses a certificate-bound token (cnf x5t#S256) on a listener without client certificates', async () => {
    const token = await fx.idp.token(AUD, { cnf: { 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' } });
    expectRefusedReply(fx.upstream, await post([['Authorization', `Bearer ${token}`]], '/mcp'), 401, 'certificate_missing', invalidTokenChallenge('certificate_missing'));
  });

  it('refuses a token bound by a confirmation method the gateway cannot check', async () => {
    const token = await fx.idp.token(AUD, { cnf: { jwk: key.publicJwk } });
    expectRefusedReply(fx.upstream, await post([['Authorization', `Bearer ${token}`]], '/mcp'), 401, 'token_binding_unsupported', invalidTokenChallenge('token_binding_unsupported'));
  });

  it('accepts a DPoP-bound token with its proof on an upstream that does not require DPoP', async () => {
    const token = await bound(key, AUD);
    const reply = await post(withDpop(token, await proofFor(key, { htm: 'POST', htu: AUD, token })), '/mcp');
    expect(reply.status, reply.text).toBe(200);
    expect(fx.upstream.received).toHaveLength(1);
  });

  it('answers a DPoP caller with a DPoP challenge also for a token refusal on an upstream that does not require DPoP', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await fx.idp.token(AUD, { cnf: { jkt: key.jkt }, iat: now - 600, exp: now - 300 });
    const reply = await post(withDpop(token, await proofFor(key, { htm: 'POST', htu: AUD, token })), '/mcp');
    expectRefusedReply(fx.upstream, reply, 401, 'token_expired', `DPoP resource_metadata="${prm('/mcp')}", error="invalid_token", error_description="${reasons.token_expired.description}", scope="mcp:tools", algs="${ALGS}"`);
  });

  it('asks for a DPoP token without error details when none was sent, and advertises DPoP in the metadata', async () => {
    expectRefusedReply(fx.upstream, await post([]), 401, 'token_missing', dpopChallenge(undefined));
    const doc = (await (await fetch(`${fx.gw.url}/.well-known/oauth-protected-resource${PATH}`)).json()) as Record<string, unknown>;
    expect(doc).toMatchObject({ resource: AUD_DPOP, dpop_bound_access_tokens_required: true, dpop_signing_alg_values_supported: ALGS.split(' ') });
    const plain = (await (await fetch(`${fx.gw.url}/.well-known/oauth-protected-resource/mcp`)).json()) as Record<string, unknown>;
    expect(plain['dpop_bound_access_tokens_required']).toBeUndefined();
    expect(plain['dpop_signing_alg_values_supported']).toEqual(ALGS.split(' '));
    expectNothingForwarded(fx.upstream);
  });
});
