import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningIssuer } from '../../src/issuer/index.ts';
import { FILES, followAuthorization, pkcePair, postForm, startHttpsIssuer, startLoopbackIssuer, tempDir } from './support.ts';

const REDIRECT_URI = 'http://127.0.0.1:53682/callback';
const APP = {
  client_id: 'mcp-app',
  grant_types: ['authorization_code'],
  redirect_uris: [REDIRECT_URI],
  token_endpoint_auth_method: 'none',
  scope: 'mcp:files mcp:files:admin',
};

// A confidential client: oidc-provider would let it skip PKCE by default; OAuth 2.1 does not.
const WEB = {
  client_id: 'mcp-web',
  client_secret: 'mcp-web-secret-0123456789abcdef',
  grant_types: ['authorization_code'],
  redirect_uris: [REDIRECT_URI],
  scope: 'mcp:files',
};

function authorizeUrl(issuerUrl: string, params: Record<string, string>): URL {
  const url = new URL('/auth', issuerUrl);
  url.search = new URLSearchParams({
    client_id: APP.client_id,
    redirect_uri: REDIRECT_URI,
    response_type: 'code',
    state: 'st-1',
    ...params,
  }).toString();
  return url;
}

describe('authorization code with PKCE', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let issuer: RunningIssuer;

  beforeAll(async () => {
    dir = await tempDir();
    issuer = await startLoopbackIssuer(`${dir.dir}/keys.json`, { clients: [APP, WEB] });
  });
  afterAll(async () => {
    await issuer.close();
    await dir.remove();
  });

  it('runs end to end on a loopback issuer with S256 and yields a token for the requested audience', async () => {
    const { verifier, challenge } = pkcePair();
    const start = authorizeUrl(issuer.url, { code_challenge: challenge, code_challenge_method: 'S256', resource: FILES, scope: 'mcp:files' });
    const callback = await followAuthorization(start, REDIRECT_URI);
    expect(callback.searchParams.get('error')).toBeNull();
    expect(callback.searchParams.get('state')).toBe('st-1');
    expect(callback.searchParams.get('iss')).toBe(issuer.url);
    const code = callback.searchParams.get('code') ?? '';
    expect(code).not.toBe('');

    const wrongVerifier = await postForm(`${issuer.url}/token`, {
      grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, client_id: APP.client_id, code_verifier: pkcePair().verifier,
    });
    expect(wrongVerifier.status).toBe(400);
    expect(wrongVerifier.body['error']).toBe('invalid_grant');

    // A failed redemption does not consume the code in oidc-provider; the right verifier works.
    const { status, body } = await postForm(`${issuer.url}/token`, {
      grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, client_id: APP.client_id, code_verifier: verifier, resource: FILES,
    });
    expect(status).toBe(200);
    expect(body).not.toHaveProperty('refresh_token');
    const { payload } = await jwtVerify(body['access_token'] as string, createRemoteJWKSet(new URL(issuer.jwksUri)), {
      issuer: issuer.url,
      audience: FILES,
      typ: 'at+jwt',
    });
    expect(payload.sub).toBe('demo-user');
    expect(payload['client_id']).toBe(APP.client_id);
    expect(payload['scope']).toBe('mcp:files');
  });

  it('refuses plain PKCE', async () => {
    const { verifier } = pkcePair();
    const start = authorizeUrl(issuer.url, { code_challenge: verifier, code_challenge_method: 'plain', resource: FILES, scope: 'mcp:files' });
    const callback = await followAuthorization(start, REDIRECT_URI);
    expect(callback.searchParams.get('error')).toBe('invalid_request');
    expect(callback.searchParams.get('code')).toBeNull();
  });

  it('refuses an authorization request without PKCE, even from a confidential client', async () => {
    for (const client_id of [APP.client_id, WEB.client_id]) {
      const callback = await followAuthorization(authorizeUrl(issuer.url, { client_id, resource: FILES, scope: 'mcp:files' }), REDIRECT_URI);
      expect(callback.searchParams.get('error')).toBe('invalid_request');
      expect(callback.searchParams.get('error_description')).toMatch(/requires PKCE/);
      expect(callback.searchParams.get('code')).toBeNull();
    }
  });

  it('refuses an authorization request without a resource', async () => {
    const { challenge } = pkcePair();
    const start = authorizeUrl(issuer.url, { code_challenge: challenge, code_challenge_method: 'S256', scope: 'mcp:files' });
    const callback = await followAuthorization(start, REDIRECT_URI);
    expect(callback.searchParams.get('error')).toBe('invalid_target');
  });
});

describe('interaction on a non-loopback issuer', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let issuer: RunningIssuer;
  let local: string;

  beforeAll(async () => {
    dir = await tempDir();
    ({ issuer, local } = await startHttpsIssuer(`${dir.dir}/keys.json`, { clients: [APP] }));
  });
  afterAll(async () => {
    await issuer.close();
    await dir.remove();
  });

  it('refuses to sign anyone in and says to use a real IdP', async () => {
    const { challenge } = pkcePair();
    const start = authorizeUrl(issuer.url, { code_challenge: challenge, code_challenge_method: 'S256', resource: FILES, scope: 'mcp:files' });
    const callback = await followAuthorization(start, REDIRECT_URI, { issuer: issuer.url, local });
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('error_description')).toMatch(/single-node demos and tests; use your IdP in production/);
    expect(callback.searchParams.get('code')).toBeNull();
  });
});
