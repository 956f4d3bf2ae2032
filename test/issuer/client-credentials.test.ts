import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningIssuer } from '../../src/issuer/index.ts';
import { clientCredentials, FILES, NOTES, startLoopbackIssuer, tempDir, WORKLOAD } from './support.ts';

const TTL = 120;

describe('client_credentials with resource indicators', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let issuer: RunningIssuer;
  let eddsa: RunningIssuer;

  beforeAll(async () => {
    dir = await tempDir();
    issuer = await startLoopbackIssuer(`${dir.dir}/es256.json`, { accessTokenTtlSeconds: TTL });
    eddsa = await startLoopbackIssuer(`${dir.dir}/eddsa.json`, { signingAlg: 'EdDSA' });
  });
  afterAll(async () => {
    await issuer.close();
    await eddsa.close();
    await dir.remove();
  });

  it('issues an RFC 9068 JWT for exactly the requested audience that verifies against jwks_uri', async () => {
    const { status, body } = await clientCredentials(issuer, { resource: FILES, scope: 'mcp:files' });
    expect(status).toBe(200);
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: TTL, scope: 'mcp:files' });
    const token = body['access_token'] as string;

    const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(issuer.jwksUri)), {
      issuer: issuer.url,
      audience: FILES,
      typ: 'at+jwt',
      algorithms: ['ES256'],
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload.aud).toBe(FILES);
    expect(payload.sub).toBe(WORKLOAD.client_id);
    expect(payload['client_id']).toBe(WORKLOAD.client_id);
    expect(payload['scope']).toBe('mcp:files');
    expect(typeof payload.jti).toBe('string');
    const iat = payload.iat ?? Number.NaN;
    const exp = payload.exp ?? Number.NaN;
    expect(exp).toBeGreaterThan(iat);
    expect(exp).toBeLessThanOrEqual(iat + TTL);
  });

  it('grants only the scopes of the requested resource', async () => {
    // mcp:notes is allowed for this client, but belongs to another audience.
    const { status, body } = await clientCredentials(issuer, { resource: FILES, scope: 'mcp:files mcp:notes' });
    expect(status).toBe(200);
    expect(body['scope']).toBe('mcp:files');
  });

  it('refuses a scope the client is not allowed', async () => {
    const { status, body } = await clientCredentials(issuer, { resource: FILES, scope: 'mcp:files:admin' });
    expect(status).toBe(400);
    expect(body['error']).toBe('invalid_scope');
  });

  it('issues a token for another declared audience with that audience only', async () => {
    const { status, body } = await clientCredentials(issuer, { resource: NOTES, scope: 'mcp:notes' });
    expect(status).toBe(200);
    const { payload } = await jwtVerify(body['access_token'] as string, createRemoteJWKSet(new URL(issuer.jwksUri)), { issuer: issuer.url });
    expect(payload.aud).toBe(NOTES);
  });

  it('refuses an audience that is not declared with invalid_target', async () => {
    const { status, body } = await clientCredentials(issuer, { resource: 'http://127.0.0.1:8080/other/mcp', scope: 'mcp:files' });
    expect(status).toBe(400);
    expect(body['error']).toBe('invalid_target');
  });

  it('refuses a declared audience spelled differently (no normalisation)', async () => {
    const { status, body } = await clientCredentials(issuer, { resource: `${FILES}/`, scope: 'mcp:files' });
    expect(status).toBe(400);
    expect(body['error']).toBe('invalid_target');
  });

  it('refuses a request without resource: no audience-less tokens', async () => {
    const forms: Record<string, string>[] = [{ scope: 'mcp:files' }, {}, { resource: '', scope: 'mcp:files' }];
    for (const form of forms) {
      const { status, body } = await clientCredentials(issuer, form);
      expect(status).toBe(400);
      expect(body['error']).toBe('invalid_target');
      expect(body).not.toHaveProperty('access_token');
    }
  });

  it('refuses two resources in one client_credentials request', async () => {
    const res = await fetch(`${issuer.url}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${WORKLOAD.client_id}:${WORKLOAD.client_secret}`).toString('base64')}`,
      },
      body: `grant_type=client_credentials&resource=${encodeURIComponent(FILES)}&resource=${encodeURIComponent(NOTES)}`,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as Record<string, unknown>)['error']).toBe('invalid_target');
  });

  it('refuses a wrong client secret', async () => {
    const { status, body } = await clientCredentials(issuer, { resource: FILES }, { client_id: WORKLOAD.client_id, client_secret: 'wrong' });
    expect(status).toBe(401);
    expect(body['error']).toBe('invalid_client');
  });

  it('signs with EdDSA when configured', async () => {
    const { status, body } = await clientCredentials(eddsa, { resource: FILES, scope: 'mcp:files' });
    expect(status).toBe(200);
    const token = body['access_token'] as string;
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt' });
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(eddsa.jwksUri)), { issuer: eddsa.url, audience: FILES, algorithms: ['EdDSA'] });
    // Default lifetime: five minutes.
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(300);
  });
});
