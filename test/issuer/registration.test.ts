import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningIssuer } from '../../src/issuer/index.ts';
import { clientCredentials, FILES, INITIAL_ACCESS_TOKEN, startHttpsIssuer, startLoopbackIssuer, tempDir } from './support.ts';

const WORKLOAD_METADATA = {
  grant_types: ['client_credentials'],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: 'mcp:files',
};

async function register(url: string, metadata: object, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(metadata) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('RFC 7591 dynamic client registration', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let open: RunningIssuer;
  let gated: RunningIssuer;
  let gatedLocal: string;
  const initialAccessToken = INITIAL_ACCESS_TOKEN;

  beforeAll(async () => {
    dir = await tempDir();
    open = await startLoopbackIssuer(`${dir.dir}/open.json`);
    ({ issuer: gated, local: gatedLocal } = await startHttpsIssuer(`${dir.dir}/gated.json`));
  });
  afterAll(async () => {
    await open.close();
    await gated.close();
    await dir.remove();
  });

  it('registers a workload without a token on a loopback issuer, and the client gets a token', async () => {
    const { status, body } = await register(`${open.url}/reg`, WORKLOAD_METADATA);
    expect(status).toBe(201);
    expect(typeof body['client_id']).toBe('string');
    expect(typeof body['client_secret']).toBe('string');
    // RFC 7592: the registration can be managed (client-secrets.test.ts).
    expect(typeof body['registration_access_token']).toBe('string');

    const client = { client_id: body['client_id'] as string, client_secret: body['client_secret'] as string };
    const token = await clientCredentials(open, { resource: FILES, scope: 'mcp:files' }, client);
    expect(token.status).toBe(200);
    const { payload } = await jwtVerify(token.body['access_token'] as string, createRemoteJWKSet(new URL(open.jwksUri)), {
      issuer: open.url,
      audience: FILES,
    });
    expect(payload.sub).toBe(client.client_id);
    expect(payload['scope']).toBe('mcp:files');
  });

  it('refuses a client_credentials client that would not authenticate', async () => {
    const { status, body } = await register(`${open.url}/reg`, { ...WORKLOAD_METADATA, token_endpoint_auth_method: 'none' });
    expect(status).toBe(400);
    expect(body['error']).toBe('invalid_client_metadata');
    expect(body['error_description']).toMatch(/client_credentials requires client authentication/);
  });

  it('registers a public client for the authorization code flow', async () => {
    const { status, body } = await register(`${open.url}/reg`, { redirect_uris: ['http://127.0.0.1:53682/callback'], token_endpoint_auth_method: 'none' });
    expect(status).toBe(201);
    expect(body).toMatchObject({ grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' });
    expect(body).not.toHaveProperty('client_secret');
  });

  it('refuses to register a scope no resource declares', async () => {
    const { status, body } = await register(`${open.url}/reg`, { ...WORKLOAD_METADATA, scope: 'mcp:unknown' });
    expect(status).toBe(400);
    expect(body['error']).toBe('invalid_client_metadata');
  });

  it('refuses registration without the initial access token when one is required', async () => {
    const { status, body } = await register(`${gatedLocal}/reg`, WORKLOAD_METADATA);
    expect(status).toBe(401);
    expect(body['error']).toBe('invalid_token');
  });

  it('refuses registration with a wrong initial access token', async () => {
    const { status } = await register(`${gatedLocal}/reg`, WORKLOAD_METADATA, {
      authorization: `Bearer ${initialAccessToken.replace('iat', 'xyz')}`,
    });
    expect(status).toBe(401);
  });

  it('registers with the initial access token', async () => {
    const { status, body } = await register(`${gatedLocal}/reg`, WORKLOAD_METADATA, {
      authorization: `Bearer ${initialAccessToken}`,
    });
    expect(status).toBe(201);
    expect(typeof body['client_id']).toBe('string');
  });

  it('advertises endpoints under the configured issuer whatever the forwarded headers say', async () => {
    const res = await fetch(`${gatedLocal}/.well-known/oauth-authorization-server`, {
      headers: { 'x-forwarded-host': 'evil.example.test', 'x-forwarded-proto': 'http' },
    });
    const metadata = (await res.json()) as Record<string, unknown>;
    expect(metadata['issuer']).toBe('https://issuer.example.test');
    expect(metadata['registration_endpoint']).toBe('https://issuer.example.test/reg');
    expect(metadata['token_endpoint']).toBe('https://issuer.example.test/token');
    expect(metadata['jwks_uri']).toBe('https://issuer.example.test/jwks');
    expect(gated.jwksUri).toBe('https://issuer.example.test/jwks');
  });
});
