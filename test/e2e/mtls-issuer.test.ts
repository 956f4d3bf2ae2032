import { readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { Agent, request } from 'undici';
import type { RunningIssuer } from '../../src/issuer/index.ts';
import { reasons } from '../../src/reasons.ts';
import { basic, FILES, RESOURCES, startLoopbackIssuer, tempDir, WORKLOAD } from '../issuer/support.ts';
import { startGateway, type StartedGateway } from '../helpers/gateway.ts';
import { certificateThumbprint, makeClientCert, makePki, type TestClientCert, type TestPki } from '../helpers/certs.ts';
import { expectNothingForwarded } from '../helpers/refused.ts';
import { RPC } from '../helpers/rpc.ts';
import { TestUpstream } from '../helpers/upstream.ts';

// RFC 8705 end to end: the embedded issuer's mTLS listener (features.mTLS, certificateBoundAccessTokens)
// binds a client_credentials token to the certificate the client presented; the gateway's TLS listener,
// verifying client certificates against the same CA, forwards it only over a connection with that
// certificate. Both listeners are real TLS servers on loopback.

const PUBLIC = 'http://127.0.0.1:8080';
const PATH = '/files/mcp';
const BOUND = { client_id: 'bound-agent', client_secret: 'bound-agent-secret-0123456789abcdef' } as const;

let dir: Awaited<ReturnType<typeof tempDir>>;
let pki: TestPki;
let alice: TestClientCert;
let mallory: TestClientCert;
let issuer: RunningIssuer;
let upstream: TestUpstream;
let gw: StartedGateway;
const agents: Agent[] = [];

function client(cert: TestClientCert | undefined): Agent {
  const agent = new Agent({ connect: { ca: readFileSync(pki.ca), ...(cert === undefined ? {} : { cert: readFileSync(cert.cert), key: readFileSync(cert.key) }) } });
  agents.push(agent);
  return agent;
}

beforeAll(async () => {
  dir = await tempDir();
  pki = makePki();
  alice = { cert: pki.clientCert, key: pki.clientKey, x5t: certificateThumbprint(pki.clientCert) };
  mallory = makeClientCert(pki, 'mallory');
  issuer = await startLoopbackIssuer(`${dir.dir}/keys.json`, {
    resources: RESOURCES,
    clients: [
      { ...WORKLOAD, grant_types: ['client_credentials'], scope: 'mcp:files' },
      { ...BOUND, grant_types: ['client_credentials'], scope: 'mcp:files', tls_client_certificate_bound_access_tokens: true },
    ],
    mtls: { port: 0, certFile: pki.serverCert, keyFile: pki.serverKey, clientCaFile: pki.ca },
  });
  upstream = await TestUpstream.start();
  gw = await startGateway({
    listen: { host: '127.0.0.1', port: 0, tls: { certFile: pki.serverCert, keyFile: pki.serverKey, clientCaFile: pki.ca } },
    admin: { host: '127.0.0.1', port: 0 },
    publicUrl: PUBLIC,
    issuers: [{ name: 'as', issuer: issuer.url, jwksUri: issuer.jwksUri, algorithms: ['ES256'], senderConstraint: 'mtls' }],
    upstreams: [{ name: 'files', path: PATH, target: `${upstream.url}/echo/files`, issuers: ['as'], scopes: ['mcp:files'] }],
    identity: { signingKeyFile: 'gateway.jwk' },
  });
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.close()));
  await gw?.close();
  await upstream?.close();
  await issuer?.close();
  await dir?.remove();
  if (pki !== undefined) rmSync(pki.dir, { recursive: true, force: true });
});
beforeEach(() => upstream.reset());

/** client_credentials at the issuer's mTLS token endpoint (or the plain one), presenting `cert`. */
async function token(cert: TestClientCert | undefined, endpoint = `${issuer.mtlsUrl as string}/token`, who: { client_id: string; client_secret: string } = BOUND): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(endpoint, {
    method: 'POST',
    dispatcher: client(cert),
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...basic(who.client_id, who.client_secret) },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: FILES, scope: 'mcp:files' }).toString(),
  });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

async function call(cert: TestClientCert | undefined, accessToken: string): Promise<{ status: number; headers: Record<string, unknown>; body: Record<string, unknown> }> {
  const url = `${gw.url.replace('http:', 'https:')}${PATH}`;
  const res = await request(url, {
    method: 'POST',
    dispatcher: client(cert),
    // The public URL's authority: the gateway's admission checks Host against publicUrl.
    headers: { host: '127.0.0.1:8080', 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${accessToken}` },
    body: RPC,
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body: JSON.parse(text) as Record<string, unknown> };
}

describe('certificate-bound tokens from the embedded issuer through the gateway (RFC 8705)', () => {
  it('advertises the mTLS token endpoint alias and certificate-bound token support', async () => {
    const res = await fetch(new URL('/.well-known/openid-configuration', issuer.url));
    const doc = (await res.json()) as Record<string, unknown>;
    expect(doc).toMatchObject({ tls_client_certificate_bound_access_tokens: true, mtls_endpoint_aliases: { token_endpoint: `${issuer.mtlsUrl as string}/token` } });
  });

  it('binds the token to the certificate presented at the issuer; the gateway forwards it over mTLS with that certificate', async () => {
    const { status, body } = await token(alice);
    expect(status, JSON.stringify(body)).toBe(200);
    const accessToken = body['access_token'] as string;
    expect(decodeJwt(accessToken)['cnf']).toEqual({ 'x5t#S256': alice.x5t });
    const ok = await call(alice, accessToken);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(upstream.received).toHaveLength(1);
  });

  it('refuses the same token over a connection with another certificate of the same CA, or with none', async () => {
    const accessToken = (await token(alice)).body['access_token'] as string;
    for (const [cert, reason] of [[mallory, 'certificate_mismatch'], [undefined, 'certificate_missing']] as const) {
      const refused = await call(cert, accessToken);
      expect(refused.status).toBe(401);
      expect(refused.body).toMatchObject({ error: 'invalid_token', reason });
      expect(refused.headers['www-authenticate']).toContain(`error_description="${reasons[reason].description}"`);
    }
    expectNothingForwarded(upstream);
  });

  it('gives a certificate-bound client no token without a certificate, and the issuer senderConstraint refuses an unbound token', async () => {
    const plain = await token(undefined, `${issuer.url}/token`);
    expect(plain.status).toBe(400);
    expect(plain.body['error']).toBe('invalid_grant');
    const unbound = await token(undefined, `${issuer.url}/token`, WORKLOAD);
    expect(unbound.status).toBe(200);
    expect(decodeJwt(unbound.body['access_token'] as string)['cnf']).toBeUndefined();
    const refused = await call(alice, unbound.body['access_token'] as string);
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ reason: 'mtls_required' });
    expectNothingForwarded(upstream);
  });
});
