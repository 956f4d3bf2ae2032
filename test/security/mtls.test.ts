import { readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { createLocalJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { AUD, AUD_OTHER, PUBLIC_URL, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { certificateThumbprint, makeClientCert, makePki, type TestClientCert, type TestPki } from '../helpers/certs.ts';
import { expectNothingForwarded } from '../helpers/refused.ts';
import { dpopKey, proofFor, type DpopKey } from '../helpers/dpop.ts';
import { RPC } from '../helpers/rpc.ts';
import { reasons, type Reason } from '../../src/reasons.ts';

// RFC 8705 certificate-bound tokens at a gateway whose TLS listener verifies client certificates against
// a test CA (optional: clients without a certificate still connect). /mcp requires nothing, /other-mcp
// requires mtls; /strict-mcp accepts the `idp` issuer and the `strict` issuer, which requires mtls for
// every token it issues, and /both-mcp requires DPoP while `strict` adds mtls. Every refusal asserts the
// status, the challenge, the reason and that the upstream got no byte.

const AUD_STRICT = `${PUBLIC_URL}/strict-mcp`;
const AUD_BOTH = `${PUBLIC_URL}/both-mcp`;

let pki: TestPki;
let alice: TestClientCert;
let mallory: TestClientCert;
let selfSigned: TestClientCert;
let idp: TestIdp;
let strict: TestIdp;
let upstream: TestUpstream;
let gw: StartedGateway;
let base: string;
let dkey: DpopKey;
const agents: Agent[] = [];

beforeAll(async () => {
  pki = makePki();
  alice = { cert: pki.clientCert, key: pki.clientKey, x5t: certificateThumbprint(pki.clientCert) };
  mallory = makeClientCert(pki, 'mallory');
  selfSigned = makeClientCert(pki, 'self', true);
  idp = await TestIdp.start();
  strict = await TestIdp.start();
  upstream = await TestUpstream.start();
  dkey = await dpopKey();
  const config = twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url, {
    other: { senderConstraint: 'mtls' },
    root: { listen: { host: '127.0.0.1', port: 0, tls: { certFile: pki.serverCert, keyFile: pki.serverKey, clientCaFile: pki.ca } } },
  });
  (config['issuers'] as unknown[]).push({ name: 'strict', issuer: strict.issuer, jwksUri: strict.jwksUri, algorithms: ['RS256', 'ES256'], senderConstraint: 'mtls' });
  (config['upstreams'] as unknown[]).push(
    { name: 'strict', path: '/strict-mcp', target: `${upstream.url}/echo/strict`, issuers: ['idp', 'strict'], scopes: ['mcp:tools'] },
    { name: 'both', path: '/both-mcp', target: `${upstream.url}/echo/both`, issuers: ['idp', 'strict'], scopes: ['mcp:tools'], senderConstraint: 'dpop' },
  );
  gw = await startGateway(config);
  base = gw.url.replace('http:', 'https:');
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.close()));
  await gw.close();
  await upstream.close();
  await strict.close();
  await idp.close();
  rmSync(pki.dir, { recursive: true, force: true });
});
beforeEach(() => upstream.reset());

interface Reply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly text: string;
}

/** A TLS client trusting the test CA, presenting `cert` (none when undefined). */
function client(cert: TestClientCert | undefined): Agent {
  const agent = new Agent({ connect: { ca: readFileSync(pki.ca), ...(cert === undefined ? {} : { cert: readFileSync(cert.cert), key: readFileSync(cert.key) }) } });
  agents.push(agent);
  return agent;
}

async function post(cert: TestClientCert | undefined, path: string, authorization: string | undefined, extra: Record<string, string> = {}): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...extra };
  if (authorization !== undefined) headers['authorization'] = authorization;
  const res = await request(`${base}${path}`, { method: 'POST', dispatcher: client(cert), headers, body: RPC });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

function expectRefused(reply: Reply, reason: Reason, path: string): void {
  expect(reply.status, reply.text).toBe(401);
  expect(reply.headers['www-authenticate']).toBe(
    `Bearer resource_metadata="${PUBLIC_URL}/.well-known/oauth-protected-resource${path}", error="invalid_token", error_description="${reasons[reason].description}", scope="mcp:tools"`,
  );
  expect(JSON.parse(reply.text)).toMatchObject({ error: 'invalid_token', reason });
  expectNothingForwarded(upstream);
}

/** The gateway's published signing keys, over its TLS listener. */
async function gatewayKeys(): Promise<JWTVerifyGetKey> {
  const res = await request(`${base}/.well-known/jwks.json`, { dispatcher: client(undefined) });
  return createLocalJWKSet((await res.body.json()) as Parameters<typeof createLocalJWKSet>[0]);
}

const bound = (who: TestClientCert, aud = AUD, from: TestIdp = idp): Promise<string> => from.token(aud, { cnf: { 'x5t#S256': who.x5t } });

describe('certificate-bound tokens on a TLS listener with client certificates (RFC 8705 §3)', () => {
  it('forwards a certificate-bound token presented with its certificate, and the assertion says mtls with that thumbprint', async () => {
    const reply = await post(alice, '/mcp', `Bearer ${await bound(alice)}`);
    expect(reply.status, reply.text).toBe(200);
    expect(upstream.received).toHaveLength(1);
    const assertion = upstream.last()?.headers.get('x-mcp-identity')?.[0] as string;
    const { payload } = await jwtVerify(assertion, await gatewayKeys(), { audience: AUD });
    expect(payload).toMatchObject({ sender: 'mtls', 'sender_x5t#S256': alice.x5t });
    expect(payload['sender_jkt']).toBeUndefined();
  });

  it('refuses a certificate-bound token presented with another certificate of the same CA', async () => {
    expectRefused(await post(mallory, '/mcp', `Bearer ${await bound(alice)}`), 'certificate_mismatch', '/mcp');
  });

  it('refuses a certificate-bound token on a connection without a client certificate', async () => {
    expectRefused(await post(undefined, '/mcp', `Bearer ${await bound(alice)}`), 'certificate_missing', '/mcp');
  });

  it('does not count a certificate the CA did not issue, even the very one the token is bound to', async () => {
    expectRefused(await post(selfSigned, '/mcp', `Bearer ${await bound(selfSigned)}`), 'certificate_missing', '/mcp');
  });

  it('still forwards an unbound Bearer token where nothing is required, with or without a certificate', async () => {
    expect((await post(undefined, '/mcp', `Bearer ${await idp.token(AUD)}`)).status).toBe(200);
    expect((await post(alice, '/mcp', `Bearer ${await idp.token(AUD)}`)).status).toBe(200);
    expect(upstream.received).toHaveLength(2);
  });

  it('refuses an unbound token where the upstream requires mtls, even with a valid certificate', async () => {
    expectRefused(await post(alice, '/other-mcp', `Bearer ${await idp.token(AUD_OTHER)}`), 'mtls_required', '/other-mcp');
    const reply = await post(alice, '/other-mcp', `Bearer ${await bound(alice, AUD_OTHER)}`);
    expect(reply.status, reply.text).toBe(200);
  });

  it('refuses a cnf with a malformed thumbprint or a member it cannot check', async () => {
    expectRefused(await post(alice, '/mcp', `Bearer ${await idp.token(AUD, { cnf: { 'x5t#S256': 'short' } })}`), 'token_binding_unsupported', '/mcp');
    expectRefused(await post(alice, '/mcp', `Bearer ${await idp.token(AUD, { cnf: { 'x5t#S256': alice.x5t, x5u: 'https://x' } })}`), 'token_binding_unsupported', '/mcp');
  });

  it('advertises certificate-bound token support in the resource metadata', async () => {
    const res = await request(`${base}/.well-known/oauth-protected-resource/other-mcp`, { dispatcher: client(undefined) });
    expect(await res.body.json()).toMatchObject({ resource: AUD_OTHER, tls_client_certificate_bound_access_tokens: true });
  });
});

describe('senderConstraint per issuer and per upstream: strictest wins', () => {
  it("holds every token of an issuer with senderConstraint mtls to a certificate, on an upstream that requires nothing", async () => {
    expectRefused(await post(alice, '/strict-mcp', `Bearer ${await strict.token(AUD_STRICT)}`), 'mtls_required', '/strict-mcp');
    expect((await post(alice, '/strict-mcp', `Bearer ${await bound(alice, AUD_STRICT, strict)}`)).status).toBe(200);
    // The other issuer of the same upstream is not affected.
    expect((await post(undefined, '/strict-mcp', `Bearer ${await idp.token(AUD_STRICT)}`)).status).toBe(200);
  });

  it('needs both a DPoP proof and the certificate where the upstream requires dpop and the issuer mtls', async () => {
    const both = await strict.token(AUD_BOTH, { cnf: { jkt: dkey.jkt, 'x5t#S256': alice.x5t } });
    const proof = (): Promise<string> => proofFor(dkey, { htm: 'POST', htu: AUD_BOTH, token: both });
    const ok = await post(alice, '/both-mcp', `DPoP ${both}`, { dpop: await proof() });
    expect(ok.status, ok.text).toBe(200);
    const assertion = upstream.last()?.headers.get('x-mcp-identity')?.[0] as string;
    expect((await jwtVerify(assertion, await gatewayKeys(), { audience: AUD_BOTH })).payload).toMatchObject({ sender: 'dpop mtls', sender_jkt: dkey.jkt, 'sender_x5t#S256': alice.x5t });
    upstream.reset();
    const wrongCert = await post(mallory, '/both-mcp', `DPoP ${both}`, { dpop: await proof() });
    expect(JSON.parse(wrongCert.text)).toMatchObject({ reason: 'certificate_mismatch' });
    // DPoP-bound only: the issuer's mtls still applies.
    const dpopOnly = await strict.token(AUD_BOTH, { cnf: { jkt: dkey.jkt } });
    const noCertBinding = await post(alice, '/both-mcp', `DPoP ${dpopOnly}`, { dpop: await proofFor(dkey, { htm: 'POST', htu: AUD_BOTH, token: dpopOnly }) });
    expect(JSON.parse(noCertBinding.text)).toMatchObject({ reason: 'mtls_required' });
    // Certificate-bound only: the upstream's dpop still applies.
    const certOnly = await bound(alice, AUD_BOTH, strict);
    const noProof = await post(alice, '/both-mcp', `Bearer ${certOnly}`);
    expect(JSON.parse(noProof.text)).toMatchObject({ reason: 'dpop_required' });
    expect(wrongCert.status).toBe(401);
    expect(noCertBinding.status).toBe(401);
    expect(noProof.status).toBe(401);
    expectNothingForwarded(upstream);
  });
});
