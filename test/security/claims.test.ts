import { beforeEach, describe, expect, it } from 'vitest';
import { decodeProtectedHeader, type JWTPayload } from 'jose';
import { AUD, AUD_OTHER, PUBLIC_URL } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { bearerProbe, expectNothingForwarded } from '../helpers/refused.ts';
import { reasons } from '../../src/reasons.ts';
import { ASSERTION_TYP } from '../../src/identity/assertion.ts';

// security-cases.md, category claims (SC-045..067). Every token here is genuinely signed by K1 (the
// IdP's RS256 key, kid k1): only the claim under test is wrong. Upstreams: /mcp and /other-mcp (any
// client), /typ-mcp (issuer requires typ at+jwt), /clients-mcp (only client test-client), /scp-mcp (issuer
// with scopeClaim: scp).

const TOOLS_CALL = '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}';
const AUD_TYP = `${PUBLIC_URL}/typ-mcp`;
const AUD_CLIENTS = `${PUBLIC_URL}/clients-mcp`;
const AUD_SCP = `${PUBLIC_URL}/scp-mcp`;

const clock = Math.floor(Date.now() / 1000) * 1000;
const nowS = (): number => Math.floor(clock / 1000);

const fx = useGatewayFixture({
  config: (config, idp, upstream) => {
    (config['issuers'] as unknown[]).push(
      { name: 'idp-at', issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'], typ: 'at+jwt' },
      { name: 'idp-scp', issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'], scopeClaim: 'scp' },
    );
    (config['upstreams'] as unknown[]).push(
      { name: 'typ', path: '/typ-mcp', target: `${upstream.url}/echo/typ`, issuers: ['idp-at'], scopes: ['mcp:tools'] },
      { name: 'clients', path: '/clients-mcp', target: `${upstream.url}/echo/clients`, issuers: ['idp'], scopes: ['mcp:tools'], clients: ['test-client'] },
      { name: 'scp', path: '/scp-mcp', target: `${upstream.url}/echo/scp`, issuers: ['idp-scp'], scopes: ['mcp:tools'] },
    );
    return config;
  },
  now: () => clock,
});
beforeEach(() => fx.upstream.reset());

/** GOOD claims (security-cases.md) for `aud`, with the claim under test changed; `undefined` removes a claim. */
const claims = (extra: Record<string, unknown> = {}, aud: unknown = AUD): JWTPayload =>
  ({ iss: fx.idp.issuer, aud, sub: 'alice', client_id: 'test-client', scope: 'mcp:tools', iat: nowS(), exp: nowS() + 300, jti: `j-${Math.random()}`, ...extra }) as JWTPayload;
const signed = (extra: Record<string, unknown> = {}, aud: unknown = AUD, header: Record<string, unknown> = {}): Promise<string> =>
  fx.idp.sign(claims(extra, aud), { header });

const prm = (path: string): string => `${PUBLIC_URL}/.well-known/oauth-protected-resource${path}`;
const { post, expectRefused, expectForwarded } = bearerProbe(fx, { now: () => clock });

describe('claims (RFC 7519 §4.1, RFC 9068 §2.2 and §4)', () => {
  it('SC-045 refuses a K1-signed token from another issuer (iss https://evil.test, and near misses of the real one)', async () => {
    const host = new URL(fx.idp.issuer);
    for (const iss of ['https://evil.test', `${fx.idp.issuer}/`, fx.idp.issuer.toUpperCase(), `http://localhost:${host.port}`, `https://${host.host}`, ` ${fx.idp.issuer}`]) {
      await expectRefused(await signed({ iss }), 'iss_unknown');
    }
  });

  it('SC-047 refuses a K1-signed token with no iss (nor a null or array iss)', async () => {
    for (const iss of [undefined, null, [fx.idp.issuer], '']) await expectRefused(await signed({ iss }), 'iss_unknown');
  });

  it('SC-048 refuses a K1-signed token with no aud (nor a null or empty one)', async () => {
    for (const aud of [undefined, null, [], '']) await expectRefused(await signed({ aud }), 'aud_mismatch');
  });

  it('SC-049 refuses at /mcp a token for the other MCP server on this gateway, which it accepts at that server', async () => {
    const token = await signed({}, AUD_OTHER);
    await expectRefused(token, 'aud_mismatch');
    const assertion = await expectForwarded(token, '/other-mcp');
    expect(assertion.aud).toBe(AUD_OTHER);
  });

  it('SC-050 refuses aud prefix, suffix, query, case and trailing-slash look-alikes of the resource (exact match)', async () => {
    for (const aud of [`${AUD}/evil`, `${AUD}x`, `${AUD}?x`, `${PUBLIC_URL}/MCP`, `${AUD}/`, 'https://GW.TEST/mcp', `${AUD} `, 'https://gw.test', 'https://gw.test:443/mcp']) {
      await expectRefused(await signed({}, aud), 'aud_mismatch');
    }
  });

  it('SC-051 accepts an aud array containing the resource among others; the assertion aud is the upstream alone', async () => {
    const assertion = await expectForwarded(await signed({}, ['https://other.test', AUD]));
    expect(assertion.aud).toBe(AUD);
    expect(assertion.sub).toBe('alice');
  });

  it('SC-054 refuses a K1-signed token with no exp (jose alone would accept it)', async () => {
    await expectRefused(await signed({ exp: undefined }), 'claims_invalid');
  });

  it('SC-055 refuses an exp that is not a NumericDate ("9999999999", true, [1], null)', async () => {
    for (const exp of ['9999999999', true, [1], null, { n: 9999999999 }]) await expectRefused(await signed({ exp }), 'claims_invalid');
  });

  it('SC-058 refuses nbf ten minutes ahead (beyond the 30 s skew)', async () => {
    await expectRefused(await signed({ nbf: nowS() + 600 }), 'token_not_yet_valid');
  });

  it('SC-060 refuses a missing, empty or null sub: no assertion is ever minted without a subject', async () => {
    for (const sub of [undefined, '', null]) await expectRefused(await signed({ sub }), 'claims_invalid');
  });

  it('SC-061 refuses a sub that is not a string ({"id":"admin"}, ["alice","admin"], 123)', async () => {
    for (const sub of [{ id: 'admin' }, ['alice', 'admin'], 123, true]) await expectRefused(await signed({ sub }), 'claims_invalid');
  });

  it('SC-062 answers tools/call with scope "openid profile" with 403 insufficient_scope naming mcp:tools; nothing forwarded', async () => {
    const r = await post(await signed({ scope: 'openid profile' }), '/mcp', TOOLS_CALL);
    expect(r.status).toBe(403);
    expect(r.challenge).toBe(`Bearer resource_metadata="${prm('/mcp')}", error="insufficient_scope", error_description="${reasons.insufficient_scope.description}", scope="mcp:tools"`);
    expect(r.body).toEqual({ error: 'insufficient_scope', error_description: reasons.insufficient_scope.description, reason: 'insufficient_scope' });
    expectNothingForwarded(fx.upstream);
  });

  it('SC-063 answers scope look-alikes of mcp:tools with 403 (space-delimited, exact, case-sensitive tokens)', async () => {
    const lookAlikes: Record<string, unknown>[] = [
      { scope: 'mcp:toolsadmin' }, { scope: 'xmcp:tools' }, { scope: 'mcp:tools:read' }, { scope: 'MCP:TOOLS' }, { scope: 'mcp:tools\u00a0' },
      { scope: 'mcp:tools,openid' }, { scope: 'openid\tmcp:tools' }, { scope: 'mcp:*' }, { scope: 'openid', scp: ['MCP:TOOLS'] },
    ];
    for (const extra of lookAlikes) {
      const r = await post(await signed(extra), '/mcp', TOOLS_CALL);
      expect(r.status, JSON.stringify(extra)).toBe(403);
      expect(r.challenge).toBe(`Bearer resource_metadata="${prm('/mcp')}", error="insufficient_scope", error_description="${reasons.insufficient_scope.description}", scope="mcp:tools"`);
      expect(r.body).toMatchObject({ reason: 'insufficient_scope' });
    }
    expectNothingForwarded(fx.upstream);
  });

  it('SC-065 refuses an OIDC ID token (typ JWT, aud = client_id, nonce) replayed where at+jwt is required', async () => {
    const idToken = { nonce: 'n-0S6_WzA2Mj', azp: 'test-client', auth_time: nowS() - 10 };
    await expectRefused(await signed(idToken, 'test-client', { typ: 'JWT' }), 'typ_invalid', '/typ-mcp');
    // Even with the resource as its audience, an ID token is not an access token (RFC 8725 §3.11).
    await expectRefused(await signed(idToken, AUD_TYP, { typ: 'JWT' }), 'typ_invalid', '/typ-mcp');
    for (const typ of [undefined, 'jwt', 'application/jwt', 'at+jwt+x', 'dpop+jwt']) {
      await expectRefused(await signed({}, AUD_TYP, typ === undefined ? {} : { typ }), 'typ_invalid', '/typ-mcp');
    }
  });

  it('SC-066 accepts typ at+jwt in its media-type and mixed-case forms (positive control)', async () => {
    for (const typ of ['at+jwt', 'application/at+jwt', 'AT+JWT', 'Application/AT+JWT']) {
      const token = await signed({}, AUD_TYP, { typ });
      expect(decodeProtectedHeader(token).typ).toBe(typ);
      const assertion = await expectForwarded(token, '/typ-mcp');
      expect(assertion.sub).toBe('alice');
    }
  });

  it('refuses explicit non-access token types by default, before any key lookup (our own assertion, SET, logout, ID, DPoP proof)', async () => {
    const before = fx.idp.jwksRequests;
    const types: unknown[] = [ASSERTION_TYP, `application/${ASSERTION_TYP}`, 'secevent+jwt', 'logout+jwt', 'id+jwt', 'dpop+jwt', 'application/dpop+jwt', 'at+jwt+x', 'JOSE', 'JOSE+JSON', '', 'jwt ', 7, null, ['JWT']];
    for (const typ of types) {
      // An unknown kid would cost a JWKS refetch if the type were judged after the key lookup.
      await expectRefused(await fx.idp.sign(claims(), { header: { typ, kid: `unknown-${Math.random()}` } }), 'typ_invalid');
      await expectRefused(await signed({}, AUD, { typ }), 'typ_invalid');
    }
    expect(fx.idp.jwksRequests).toBe(before);
    for (const typ of [undefined, 'JWT', 'jwt', 'application/jwt', 'at+jwt', 'application/AT+JWT']) {
      await expectForwarded(await signed({}, AUD, typ === undefined ? {} : { typ }));
    }
  });

  it('refuses the gateway\'s own identity assertion replayed as a bearer token (typ mcp-identity+jwt)', async () => {
    await expectForwarded(await signed());
    const assertion = fx.upstream.received[0]?.headers.get('x-mcp-identity')?.[0] as string;
    expect(decodeProtectedHeader(assertion).typ).toBe(ASSERTION_TYP);
    fx.upstream.reset();
    await expectRefused(assertion, 'typ_invalid');
  });

  it('reads scopes from scope only on a default issuer: an scp claim adds nothing and is not even type-checked', async () => {
    for (const extra of [{ scope: undefined, scp: ['mcp:tools'] }, { scope: 'openid', scp: ['mcp:tools'] }, { scope: undefined, scp: 'mcp:tools' }]) {
      const r = await post(await signed(extra), '/mcp', TOOLS_CALL);
      expect(r.status, JSON.stringify(extra)).toBe(403);
      expect(r.body).toMatchObject({ reason: 'insufficient_scope' });
    }
    expect(fx.upstream.received).toHaveLength(0);
    expect(fx.upstream.bytes).toBe(0);
    const assertion = await expectForwarded(await signed({ scope: 'mcp:tools', scp: 5 }));
    expect(assertion['scope']).toBe('mcp:tools');
  });

  it('reads scopes from scp only on an issuer with scopeClaim: scp (array or space-delimited string), never the union', async () => {
    for (const extra of [{ scope: 'mcp:tools', scp: undefined }, { scope: 'mcp:tools', scp: ['openid'] }]) {
      const r = await post(await signed(extra, AUD_SCP), '/scp-mcp', TOOLS_CALL);
      expect(r.status, JSON.stringify(extra)).toBe(403);
      expect(r.body).toMatchObject({ reason: 'insufficient_scope' });
    }
    for (const scp of [[1], 'mcp:tools'.length, { 0: 'mcp:tools' }, [['mcp:tools']]]) await expectRefused(await signed({ scope: undefined, scp }, AUD_SCP), 'claims_invalid', '/scp-mcp');
    expect(fx.upstream.received).toHaveLength(0);
    expect(fx.upstream.bytes).toBe(0);
    expect((await expectForwarded(await signed({ scope: 'nothing', scp: ['mcp:tools', 'extra'] }, AUD_SCP), '/scp-mcp'))['scope']).toBe('mcp:tools extra');
    expect((await expectForwarded(await signed({ scope: undefined, scp: 'mcp:tools  read' }, AUD_SCP), '/scp-mcp'))['scope']).toBe('mcp:tools read');
  });

  it('SC-067 answers a client not on the upstream\'s allowed list with 403; nothing forwarded', async () => {
    const cases: Record<string, unknown>[] = [
      { client_id: 'rogue-client' },
      { client_id: undefined, azp: 'rogue-client' },
      { client_id: 'rogue-client', azp: 'test-client' }, // client_id wins: azp cannot vouch for another client
      { client_id: undefined }, // no client at all
      { client_id: 'TEST-CLIENT' },
    ];
    for (const extra of cases) {
      const r = await post(await signed(extra, AUD_CLIENTS), '/clients-mcp');
      expect(r.status, JSON.stringify(extra)).toBe(403);
      expect(r.challenge).toBeNull();
      expect(r.body).toEqual({ error: 'forbidden', error_description: reasons.client_not_allowed.description, reason: 'client_not_allowed' });
    }
    expectNothingForwarded(fx.upstream);
    const assertion = await expectForwarded(await signed({}, AUD_CLIENTS), '/clients-mcp');
    expect(assertion['client_id']).toBe('test-client');
  });
});
