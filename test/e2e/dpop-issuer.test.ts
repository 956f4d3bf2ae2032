import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import type { RunningIssuer } from '../../src/issuer/index.ts';
import { reasons } from '../../src/reasons.ts';
import { basic, FILES, postForm, startLoopbackIssuer, tempDir, WORKLOAD } from '../issuer/support.ts';
import { startGateway, type StartedGateway } from '../helpers/gateway.ts';
import { expectRefusedReply } from '../helpers/refused.ts';
import { dpopKey, proofFor, type DpopKey } from '../helpers/dpop.ts';
import { MCP_POST_HEADERS, RPC } from '../helpers/rpc.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { sendExact, type Reply } from '../helpers/wire.ts';

// The embedded issuer (oidc-provider, features.dPoP) and the gateway together: a client that proves a
// key at the token endpoint gets a token bound to it, usable through the gateway only with that key.

const PUBLIC = 'http://127.0.0.1:8080';
const PATH = '/files/mcp';

describe('DPoP-bound tokens from the embedded issuer through the gateway', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let issuer: RunningIssuer;
  let upstream: TestUpstream;
  let gw: StartedGateway;
  let key: DpopKey;

  beforeAll(async () => {
    dir = await tempDir();
    issuer = await startLoopbackIssuer(`${dir.dir}/keys.json`);
    upstream = await TestUpstream.start();
    gw = await startGateway({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      publicUrl: PUBLIC,
      issuers: [{ name: 'as', issuer: issuer.url, jwksUri: issuer.jwksUri, algorithms: ['ES256'] }],
      upstreams: [{ name: 'files', path: PATH, target: `${upstream.url}/echo/files`, issuers: ['as'], scopes: ['mcp:files'], senderConstraint: 'dpop' }],
      identity: { signingKeyFile: 'gateway.jwk' },
    });
    key = await dpopKey('ES256');
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
    await issuer?.close();
    await dir?.remove();
  });

  const tokenEndpoint = (): string => new URL('/token', issuer.url).href;
  const call = async (token: string, proof: string | undefined, scheme = 'DPoP'): Promise<Reply> =>
    sendExact(Number(new URL(gw.url).port), 'POST', PATH, [['Host', '127.0.0.1:8080'], ...Object.entries(MCP_POST_HEADERS), ['Authorization', `${scheme} ${token}`], ...(proof === undefined ? [] : [['DPoP', proof] as [string, string]])], RPC);

  it('binds the token to the key proven at the token endpoint; the gateway accepts it with a proof by that key only', async () => {
    const tokenProof = await proofFor(key, { htm: 'POST', htu: tokenEndpoint(), token: undefined });
    const { status, body } = await postForm(tokenEndpoint(), { grant_type: 'client_credentials', resource: FILES, scope: 'mcp:files' }, { ...basic(WORKLOAD.client_id, WORKLOAD.client_secret), dpop: tokenProof });
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body['token_type']).toBe('DPoP');
    const token = body['access_token'] as string;
    expect(decodeJwt(token)['cnf']).toEqual({ jkt: key.jkt });

    const ok = await call(token, await proofFor(key, { htm: 'POST', htu: `${PUBLIC}${PATH}`, token }));
    expect(ok.status, ok.text).toBe(200);
    expect(upstream.received).toHaveLength(1);

    upstream.reset();
    const thief = await dpopKey('ES256');
    const prm = `${PUBLIC}/.well-known/oauth-protected-resource${PATH}`;
    const challenge = (reason: 'token_binding_mismatch' | 'dpop_required'): string =>
      `DPoP resource_metadata="${prm}", error="invalid_token", error_description="${reasons[reason].description}", scope="mcp:files", algs="ES256 EdDSA PS256 RS256"`;
    expectRefusedReply(upstream, await call(token, await proofFor(thief, { htm: 'POST', htu: `${PUBLIC}${PATH}`, token })), 401, 'token_binding_mismatch', challenge('token_binding_mismatch'));
    expectRefusedReply(upstream, await call(token, undefined, 'Bearer'), 401, 'dpop_required', challenge('dpop_required'));
  });

  it('still issues a Bearer token without a proof (and that token is refused where DPoP is required)', async () => {
    const { status, body } = await postForm(tokenEndpoint(), { grant_type: 'client_credentials', resource: FILES, scope: 'mcp:files' }, basic(WORKLOAD.client_id, WORKLOAD.client_secret));
    expect(status).toBe(200);
    expect(body['token_type']).toBe('Bearer');
    const token = body['access_token'] as string;
    expect(decodeJwt(token)['cnf']).toBeUndefined();
    upstream.reset();
    const reply = await call(token, undefined, 'Bearer');
    expect(reply.status).toBe(401);
    expect(JSON.parse(reply.text)).toMatchObject({ reason: 'dpop_required' });
    expect(upstream.received).toHaveLength(0);
  });
});
