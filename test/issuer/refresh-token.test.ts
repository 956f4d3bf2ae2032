import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningIssuer } from '../../src/issuer/index.ts';
import { FILES, NOTES, codeFlow, postForm, register, startLoopbackIssuer, tempDir } from './support.ts';

const REDIRECT_URI = 'http://127.0.0.1:53682/callback';
// What MCP clients (the SDK, mcp-remote, the Inspector) register.
const MCP_CLIENT = {
  client_name: 'an MCP client',
  redirect_uris: [REDIRECT_URI],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
  scope: 'mcp:files',
};

describe('refresh tokens for standard MCP client registrations', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let issuer: RunningIssuer;

  beforeAll(async () => {
    dir = await tempDir();
    issuer = await startLoopbackIssuer(`${dir.dir}/keys.json`);
  });
  afterAll(async () => {
    await issuer.close();
    await dir.remove();
  });

  async function registeredClientTokens(): Promise<{ clientId: string; tokens: Record<string, unknown> }> {
    const reg = await register(`${issuer.url}/reg`, MCP_CLIENT);
    expect(reg.status).toBe(201);
    const clientId = reg.body['client_id'] as string;
    const tokens = await codeFlow(issuer.url, { clientId, redirectUri: REDIRECT_URI, resource: FILES, scope: 'mcp:files' });
    expect(tokens.status).toBe(200);
    return { clientId, tokens: tokens.body };
  }

  function refresh(clientId: string, refreshToken: string, extra: Record<string, string> = {}): ReturnType<typeof postForm> {
    return postForm(`${issuer.url}/token`, { grant_type: 'refresh_token', client_id: clientId, refresh_token: refreshToken, ...extra });
  }

  it('registers authorization_code + refresh_token and issues a refresh token without offline_access', async () => {
    const reg = await register(`${issuer.url}/reg`, MCP_CLIENT);
    expect(reg.status).toBe(201);
    expect(reg.body['grant_types']).toEqual(['authorization_code', 'refresh_token']);
    const tokens = await codeFlow(issuer.url, { clientId: reg.body['client_id'] as string, redirectUri: REDIRECT_URI, resource: FILES, scope: 'mcp:files' });
    expect(tokens.status).toBe(200);
    expect(typeof tokens.body['refresh_token']).toBe('string');
    expect(tokens.body['scope']).toBe('mcp:files');
  });

  it('rotates the refresh token on every use and keeps the new access token bound to the same resource', async () => {
    const { clientId, tokens } = await registeredClientTokens();
    const first = await refresh(clientId, tokens['refresh_token'] as string);
    expect(first.status).toBe(200);
    expect(first.body['refresh_token']).not.toBe(tokens['refresh_token']);
    const { payload } = await jwtVerify(first.body['access_token'] as string, createRemoteJWKSet(new URL(issuer.jwksUri)), { issuer: issuer.url, audience: FILES, typ: 'at+jwt' });
    expect(payload).toMatchObject({ client_id: clientId, sub: 'demo-user', scope: 'mcp:files' });
    expect(payload.exp! - payload.iat!).toBe(300);
    const second = await refresh(clientId, first.body['refresh_token'] as string);
    expect(second.status).toBe(200);
    expect(second.body['refresh_token']).not.toBe(first.body['refresh_token']);
  });

  it('refuses the replay of a rotated refresh token and revokes the whole family', async () => {
    const { clientId, tokens } = await registeredClientTokens();
    const rotated = await refresh(clientId, tokens['refresh_token'] as string);
    expect(rotated.status).toBe(200);
    const replay = await refresh(clientId, tokens['refresh_token'] as string);
    expect(replay.status).toBe(400);
    expect(replay.body['error']).toBe('invalid_grant');
    // The legitimate holder's current token dies with the family: the thief's copy is worthless too.
    const current = await refresh(clientId, rotated.body['refresh_token'] as string);
    expect(current.status).toBe(400);
    expect(current.body['error']).toBe('invalid_grant');
  });

  it('refreshes for the resource the grant is bound to, named or not, and never for another', async () => {
    const { clientId, tokens } = await registeredClientTokens();
    const same = await refresh(clientId, tokens['refresh_token'] as string, { resource: FILES });
    expect(same.status).toBe(200);
    expect(decodeJwt(same.body['access_token'] as string).aud).toBe(FILES);
    const other = await refresh(clientId, same.body['refresh_token'] as string, { resource: NOTES });
    expect(other.status).toBe(400);
    expect(other.body['error']).toBe('invalid_target');
    // oidc-provider rotates before it resolves the resource: the refused attempt used the token up,
    // and presenting it again is a replay that ends the family.
    const after = await refresh(clientId, same.body['refresh_token'] as string);
    expect(after.body['error']).toBe('invalid_grant');
  });

  it('refuses a refresh token presented by another client', async () => {
    const { tokens } = await registeredClientTokens();
    const thief = await register(`${issuer.url}/reg`, MCP_CLIENT);
    const stolen = await refresh(thief.body['client_id'] as string, tokens['refresh_token'] as string);
    expect(stolen.status).toBe(400);
    expect(stolen.body['error']).toBe('invalid_grant');
  });
});

describe('MCP client registration rules', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let issuer: RunningIssuer;

  beforeAll(async () => {
    dir = await tempDir();
    issuer = await startLoopbackIssuer(`${dir.dir}/keys.json`);
  });
  afterAll(async () => {
    await issuer.close();
    await dir.remove();
  });

  it('refuses a web client whose redirect URI is plain http off loopback', async () => {
    const reg = await register(`${issuer.url}/reg`, { ...MCP_CLIENT, redirect_uris: ['http://app.example.test/callback'] });
    expect(reg.status).toBe(400);
    // RFC 7591 §3.2.2: the redirect-specific error code.
    expect(reg.body['error']).toBe('invalid_redirect_uri');
    expect(reg.body['error_description']).toMatch(/https or http on a loopback address/);
  });

  it('matches a web client redirect URI exactly, port included', async () => {
    const reg = await register(`${issuer.url}/reg`, MCP_CLIENT);
    const clientId = reg.body['client_id'] as string;
    const result = await codeFlow(issuer.url, { clientId, redirectUri: 'http://127.0.0.1:40000/callback', resource: FILES, scope: 'mcp:files' });
    expect(result.status).toBe(400);
    expect(result.body['error']).toBe('invalid_redirect_uri');
  });

  it('lets a native client use any loopback port for its registered redirect (RFC 8252 §7.3)', async () => {
    const reg = await register(`${issuer.url}/reg`, { ...MCP_CLIENT, application_type: 'native', redirect_uris: ['http://127.0.0.1/callback'] });
    expect(reg.status).toBe(201);
    expect(reg.body['application_type']).toBe('native');
    const clientId = reg.body['client_id'] as string;
    const ok = await codeFlow(issuer.url, { clientId, redirectUri: 'http://127.0.0.1:40001/callback', resource: FILES, scope: 'mcp:files' });
    expect(ok.status).toBe(200);
    // Only the port may differ.
    const path = await codeFlow(issuer.url, { clientId, redirectUri: 'http://127.0.0.1:40001/other', resource: FILES, scope: 'mcp:files' });
    expect(path.body['error']).toBe('invalid_redirect_uri');
  });

  it('refuses a native client with an http redirect off loopback', async () => {
    const reg = await register(`${issuer.url}/reg`, { ...MCP_CLIENT, application_type: 'native', redirect_uris: ['http://app.example.test/callback'] });
    expect(reg.status).toBe(400);
    expect(reg.body['error']).toBe('invalid_redirect_uri');
  });

  it('refuses a client_credentials registration without a scope', async () => {
    const reg = await register(`${issuer.url}/reg`, { grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic' });
    expect(reg.status).toBe(400);
    expect(reg.body['error_description']).toMatch(/must register the scopes/);
  });
});
