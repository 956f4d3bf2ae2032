import { beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, generateKeyPair, jwtVerify, SignJWT, type CryptoKey, type JWTVerifyGetKey } from 'jose';
import type { Received } from '../helpers/upstream.ts';
import { AUD, PUBLIC_URL } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { expectRefusedReply } from '../helpers/refused.ts';
import { RPC } from '../helpers/rpc.ts';
import { rawExchange, sendExact, type RawReply, type Reply } from '../helpers/wire.ts';

// Where a credential may come from (RFC 6750 §2.1: exactly one Authorization: Bearer header) and what
// the upstream receives: the gateway's own signed assertion, never the caller's credentials.

const PRM = `${PUBLIC_URL}/.well-known/oauth-protected-resource/mcp`;
/** 401-noerr: RFC 6750 §3.1 last paragraph (no credentials, no error code) + RFC 9728 §5.1. */
const NO_ERROR_CHALLENGE = `Bearer resource_metadata="${PRM}", scope="mcp:tools"`;
const challenge = (error: string, description: string): string =>
  `Bearer resource_metadata="${PRM}", error="${error}", error_description="${description}", scope="mcp:tools"`;

let evilKey: CryptoKey;
let gatewayKeys: JWTVerifyGetKey;

const fx = useGatewayFixture();
beforeAll(async () => {
  evilKey = (await generateKeyPair('RS256')).privateKey;
  const jwks = await fetch(`${fx.gw.url}/.well-known/jwks.json`);
  expect(jwks.status).toBe(200);
  gatewayKeys = createLocalJWKSet((await jwks.json()) as Parameters<typeof createLocalJWKSet>[0]);
});

const send = (method: string, path: string, headers: readonly (readonly [string, string])[], body?: string): Promise<Reply> => sendExact(fx.port, method, path, headers, body);

const postRpc = (headers: readonly (readonly [string, string])[], path = '/mcp'): Promise<Reply> =>
  send('POST', path, [['Content-Type', 'application/json'], ...headers], RPC);

/** What a positive control must show at the upstream: one gateway-signed assertion, no caller credential. */
async function expectOnlyGatewayAssertion(received: Received | undefined, sub: string, tokens: readonly string[]): Promise<void> {
  expect(received).toBeDefined();
  const r = received as Received;
  for (const name of ['authorization', 'cookie', 'proxy-authorization', 'x-identity-assertion', 'dpop']) expect(r.headers.has(name)).toBe(false);
  const values = r.headers.get('x-mcp-identity') ?? [];
  expect(values).toHaveLength(1);
  const { payload, protectedHeader } = await jwtVerify(values[0] as string, gatewayKeys, {
    issuer: PUBLIC_URL, audience: AUD, algorithms: ['EdDSA', 'ES256'], typ: 'mcp-identity+jwt',
  });
  expect(protectedHeader.alg).toMatch(/^(EdDSA|ES256)$/);
  expect(payload.sub).toBe(sub);
  // The caller's token is nowhere in what reached the upstream (MCP "Token Passthrough").
  const everything = r.rawHeaders.join('\n') + '\n' + r.url + '\n' + r.body;
  for (const t of tokens) expect(everything).not.toContain(t);
}

/** A JWT the attacker signed: right iss/aud, claims of their choosing, the IdP's kid, EVIL's key. */
async function evilToken(claims: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: fx.idp.issuer, aud: AUD, sub: 'admin', scope: 'mcp:tools', iat: now, exp: now + 300, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .sign(evilKey);
}

const raw = (payload: string, maxMs = 3_000): Promise<RawReply> => rawExchange(fx.port, payload, maxMs);

const rawPost = (headerLines: string, body = RPC): string =>
  `POST /mcp HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/json\r\n${headerLines}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe('credential carriers and identity headers', () => {
  it('SC-018 refuses a bearer header folded onto a second line that forges the identity header (obs-fold, bare LF)', async () => {
    const good = await fx.idp.token(AUD);
    for (const fold of [
      `Authorization: Bearer ${good}\r\n X-MCP-Identity: forged\r\n`,
      `Authorization: Bearer ${good}\r\n\tX-Identity-Assertion: forged\r\n`,
      `Authorization: Bearer ${good}\nX-MCP-Identity: forged\r\n`,
    ]) {
      fx.upstream.reset();
      const reply = await raw(rawPost(fold));
      // RFC 9112 §5.2: the parser refuses obs-fold outright; nothing reaches the pipeline.
      expect(reply.status).toBe(400);
      expect(reply.closedByServer).toBe(true);
      expect(reply.headers.get('connection')).toEqual(['close']);
      expect(fx.upstream.bytes).toBe(0);
    }
  });

  it('SC-091 refuses two Authorization headers in either order, whatever their case', async () => {
    const good = await fx.idp.token(AUD);
    const evil = await evilToken();
    for (const pair of [
      `Authorization: Bearer ${good}\r\nAuthorization: Bearer ${evil}\r\n`,
      `Authorization: Bearer ${evil}\r\nAuthorization: Bearer ${good}\r\n`,
      `Authorization: Bearer ${good}\r\nAuthorization: Bearer garbage\r\n`,
      `authorization: Bearer garbage\r\nAUTHORIZATION: Bearer ${good}\r\n`,
    ]) {
      fx.upstream.reset();
      const reply = await raw(rawPost(pair));
      expect(reply.status).toBe(400);
      expect(reply.headers.get('www-authenticate')).toEqual([challenge('invalid_request', 'more than one credential was sent')]);
      expect(JSON.parse(reply.body)).toEqual({ error: 'invalid_request', error_description: 'more than one credential was sent', reason: 'token_duplicate' });
      expect(fx.upstream.bytes).toBe(0);
    }
  });

  it('SC-092 accepts the Bearer scheme in any case (positive control): one gateway-signed assertion upstream', async () => {
    for (const [name, scheme] of [['authorization', 'bearer'], ['Authorization', 'BEARER'], ['AUTHORIZATION', 'bEaReR']] as const) {
      const good = await fx.idp.token(AUD);
      fx.upstream.reset();
      const reply = await postRpc([[name, `${scheme} ${good}`]]);
      expect(reply.status).toBe(200);
      expect(fx.upstream.received).toHaveLength(1);
      expect(fx.upstream.received[0]?.url).toBe('/echo');
      await expectOnlyGatewayAssertion(fx.upstream.received[0], 'alice', [good]);
    }
  });

  it('SC-094 refuses comma-joined credentials in one Authorization header', async () => {
    const good = await fx.idp.token(AUD);
    const other = await fx.idp.token(AUD, { sub: 'bob' });
    for (const value of [`Bearer ${good}, Bearer ${other}`, `Bearer ${good},Bearer ${other}`, `Bearer ${good} ${other}`]) {
      fx.upstream.reset();
      expectRefusedReply(fx.upstream, await postRpc([['Authorization', value]]), 401, 'token_malformed', challenge('invalid_token', 'the bearer token is malformed'));
    }
  });

  // DPoP is supported (RFC 9449): `DPoP <unbound token>` is refused in test/security/dpop.test.ts.
  it('SC-095 answers another scheme (Basic, Token) as if no bearer token were sent', async () => {
    const good = await fx.idp.token(AUD);
    for (const headers of [
      [['Authorization', 'Basic YWRtaW46YWRtaW4=']],
      [['Authorization', `Token ${good}`]],
    ] as const) {
      fx.upstream.reset();
      const reply = await postRpc(headers);
      expectRefusedReply(fx.upstream, reply, 401, 'token_missing', NO_ERROR_CHALLENGE);
      expect(JSON.parse(reply.text)).toMatchObject({ error_description: 'a bearer token is required' });
    }
  });

  it('SC-096 refuses a token in the query string and never logs it', async () => {
    const good = await fx.idp.token(AUD);
    for (const path of [`/mcp?access_token=${good}`, `/mcp?foo=1&access_token=${good}`]) {
      fx.upstream.reset();
      expectRefusedReply(fx.upstream, await postRpc([], path), 401, 'token_missing', NO_ERROR_CHALLENGE);
    }
    expect(fx.gw.logs.join('')).not.toContain(good);
  });

  it('SC-097 refuses a token in a form-encoded body', async () => {
    const good = await fx.idp.token(AUD);
    fx.upstream.reset();
    const reply = await send('POST', '/mcp', [['Content-Type', 'application/x-www-form-urlencoded']], `access_token=${good}`);
    expectRefusedReply(fx.upstream, reply, 401, 'token_missing', NO_ERROR_CHALLENGE);
  });

  it('SC-098 refuses a token in a cookie', async () => {
    const good = await fx.idp.token(AUD);
    fx.upstream.reset();
    expectRefusedReply(fx.upstream, await postRpc([['Cookie', `access_token=${good}; token=${good}`]]), 401, 'token_missing', NO_ERROR_CHALLENGE);
  });

  it('SC-099 refuses a token sent only as Proxy-Authorization', async () => {
    const good = await fx.idp.token(AUD);
    fx.upstream.reset();
    expectRefusedReply(fx.upstream, await postRpc([['Proxy-Authorization', `Bearer ${good}`]]), 401, 'token_missing', NO_ERROR_CHALLENGE);
  });

  it('SC-100 replaces a forged identity header with its own: the upstream sees exactly one assertion, for alice', async () => {
    const good = await fx.idp.token(AUD, { sub: 'alice' });
    const forged = await evilToken({ sub: 'admin' });
    fx.upstream.reset();
    const reply = await postRpc([
      ['X-MCP-Identity', forged],
      ['Authorization', `Bearer ${good}`],
      ['x-mcp-identity', forged],
      ['X-Identity-Assertion', forged],
      ['X-MCP-Subject', 'admin'],
    ]);
    expect(reply.status).toBe(200);
    expect(fx.upstream.received).toHaveLength(1);
    const received = fx.upstream.received[0] as Received;
    await expectOnlyGatewayAssertion(received, 'alice', [good, forged]);
    expect(received.headers.has('x-mcp-subject')).toBe(false);
  });

  it('SC-100 drops forged identity and session headers spelt with underscores (CGI/WSGI upstreams read X_MCP_Identity as X-MCP-Identity)', async () => {
    const good = await fx.idp.token(AUD, { sub: 'alice' });
    const forged = await evilToken({ sub: 'admin' });
    fx.upstream.reset();
    const reply = await postRpc([
      ['Authorization', `Bearer ${good}`],
      ['X_MCP_Identity', forged],
      ['X-MCP_Identity', forged],
      ['x_identity_assertion', forged],
      ['X_MCP_Subject', 'admin'],
      ['X_Forwarded_For', '10.0.0.1'],
      ['Proxy_Authorization', `Bearer ${good}`],
      ['X_Request_Id', 'forged-request-id'],
      ['Mcp_Session_Id', 'someone-elses-session'],
    ]);
    expect(reply.status).toBe(200);
    expect(fx.upstream.received).toHaveLength(1);
    const received = fx.upstream.received[0] as Received;
    const names = received.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase().replace(/_/g, '-'));
    expect(names.filter((n) => n === 'x-mcp-identity')).toHaveLength(1);
    for (const n of ['x-identity-assertion', 'x-mcp-subject', 'proxy-authorization', 'mcp-session-id']) expect(names).not.toContain(n);
    expect(received.headers.get('x-request-id')).not.toContain('forged-request-id');
    expect(names.filter((n) => n === 'x-request-id')).toHaveLength(1);
    expect(names.filter((n) => n === 'x-forwarded-for')).toHaveLength(1);
    expect(received.headers.get('x-forwarded-for')).toEqual(['127.0.0.1']);
    await expectOnlyGatewayAssertion(received, 'alice', [good, forged]);
  });

  it('SC-101 refuses a forged identity header without a token', async () => {
    const forged = await evilToken({ sub: 'admin' });
    for (const name of ['X-MCP-Identity', 'X-Identity-Assertion']) {
      fx.upstream.reset();
      expectRefusedReply(fx.upstream, await postRpc([[name, forged]]), 401, 'token_missing', NO_ERROR_CHALLENGE);
    }
  });

  it('SC-102 a client naming the identity header in Connection cannot strip the gateway-added assertion', async () => {
    for (const connection of ['close, X-MCP-Identity', 'keep-alive, x-mcp-identity, X-Forwarded-For, X-Request-Id']) {
      const good = await fx.idp.token(AUD);
      fx.upstream.reset();
      const reply = await postRpc([['Authorization', `Bearer ${good}`], ['Connection', connection]]);
      expect(reply.status).toBe(200);
      expect(fx.upstream.received).toHaveLength(1);
      const received = fx.upstream.received[0] as Received;
      await expectOnlyGatewayAssertion(received, 'alice', [good]);
      // The gateway's other own headers are added after the client's Connection list was applied too.
      expect(received.headers.get('x-forwarded-for')).toEqual(['127.0.0.1']);
      expect(received.headers.get('x-request-id')).toHaveLength(1);
    }
  });

  it('SC-103 Connection: Authorization neither hides the token from the gateway nor passes it upstream', async () => {
    const good = await fx.idp.token(AUD);
    fx.upstream.reset();
    const reply = await postRpc([['Connection', 'Authorization'], ['Authorization', `Bearer ${good}`]]);
    expect(reply.status).toBe(200);
    expect(fx.upstream.received).toHaveLength(1);
    await expectOnlyGatewayAssertion(fx.upstream.received[0], 'alice', [good]);
  });

  it('SC-104 never passes the caller’s Authorization, Cookie or Proxy-Authorization upstream: only the assertion', async () => {
    const good = await fx.idp.token(AUD);
    fx.upstream.reset();
    const reply = await postRpc([
      ['Authorization', `Bearer ${good}`],
      ['Cookie', `session=s3cr3t; access_token=${good}`],
      ['Proxy-Authorization', `Bearer ${good}`],
    ]);
    expect(reply.status).toBe(200);
    expect(fx.upstream.received).toHaveLength(1);
    const received = fx.upstream.received[0] as Received;
    await expectOnlyGatewayAssertion(received, 'alice', [good, 's3cr3t']);
    expect(received.body).toBe(RPC);
  });

  it('SC-109 answers Expect: 100-continue with an invalid token by 401 alone, without reading the 10 MB body', async () => {
    const invalid = await evilToken();
    fx.upstream.reset();
    const started = Date.now();
    const reply = await raw(`POST /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${invalid}\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\n`);
    expect(reply.text.startsWith('HTTP/1.1 401 ')).toBe(true); // no "HTTP/1.1 100 Continue" before it
    expect(reply.text).not.toContain('100 Continue');
    expect(reply.headers.get('www-authenticate')).toEqual([challenge('invalid_token', 'the token signature is invalid')]);
    expect(JSON.parse(reply.body)).toMatchObject({ reason: 'signature_invalid' });
    expect(reply.headers.get('connection')).toEqual(['close']);
    expect(reply.closedByServer).toBe(true);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(fx.upstream.bytes).toBe(0);
  });

  it('SC-183 never reads a scheme-less or mis-punctuated Authorization value as a token', async () => {
    const good = await fx.idp.token(AUD);
    for (const value of [good, `Bearer:${good}`, `Bearer:  ${good}`, `${good} Bearer`]) {
      fx.upstream.reset();
      expectRefusedReply(fx.upstream, await postRpc([['Authorization', value]]), 401, 'token_missing', NO_ERROR_CHALLENGE);
    }
  });

  it('SC-184 refuses a header token sent together with a query or form-body token, and never logs or forwards the second', async () => {
    const alice = await fx.idp.token(AUD, { sub: 'alice' });
    const bob = await fx.idp.token(AUD, { sub: 'bob' });
    const conflict = challenge('invalid_request', 'the token was sent by more than one method');
    fx.upstream.reset();
    expectRefusedReply(fx.upstream, await postRpc([['Authorization', `Bearer ${alice}`]], `/mcp?access_token=${bob}`), 400, 'credentials_conflict', conflict);
    fx.upstream.reset();
    const form = await send('POST', '/mcp', [['Authorization', `Bearer ${alice}`], ['Content-Type', 'application/x-www-form-urlencoded']], `access_token=${bob}`);
    expectRefusedReply(fx.upstream, form, 400, 'credentials_conflict', conflict);
    expect(fx.gw.logs.join('')).not.toContain(bob);
  });
});
