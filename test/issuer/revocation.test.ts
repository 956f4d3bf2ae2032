import { describe, expect, it } from 'vitest';
import { FILES, codeFlow, followAuthorization, postForm, register, useLoopbackIssuer } from './support.ts';

const REDIRECT_URI = 'http://127.0.0.1:53682/callback';
const MCP_CLIENT = { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none', scope: 'mcp:files' };

describe('RFC 7009 revocation, RFC 9207 iss, truthful metadata', () => {
  const fx = useLoopbackIssuer();

  async function family(): Promise<{ clientId: string; refreshToken: string }> {
    const reg = await register(`${fx.issuer.url}/reg`, MCP_CLIENT);
    const clientId = reg.body['client_id'] as string;
    const tokens = await codeFlow(fx.issuer.url, { clientId, redirectUri: REDIRECT_URI, resource: FILES, scope: 'mcp:files' });
    return { clientId, refreshToken: tokens.body['refresh_token'] as string };
  }

  it('revokes a refresh token: it, and the grant it belongs to, no longer yield tokens', async () => {
    const { clientId, refreshToken } = await family();
    const res = await fetch(`${fx.issuer.url}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: refreshToken, token_type_hint: 'refresh_token', client_id: clientId }),
    });
    expect(res.status).toBe(200);
    const after = await postForm(`${fx.issuer.url}/token`, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId });
    expect(after.status).toBe(400);
    expect(after.body['error']).toBe('invalid_grant');
  });

  it('does not let another client revoke a token that is not its own', async () => {
    const { clientId, refreshToken } = await family();
    const other = await register(`${fx.issuer.url}/reg`, MCP_CLIENT);
    const res = await fetch(`${fx.issuer.url}/token/revocation`, { method: 'POST', body: new URLSearchParams({ token: refreshToken, client_id: other.body['client_id'] as string }) });
    // RFC 7009 §2.2: answered as for a token it cannot see, and nothing is revoked.
    expect(res.status).toBe(200);
    const still = await postForm(`${fx.issuer.url}/token`, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId });
    expect(still.status).toBe(200);
  });

  it('advertises what it does: revocation, refresh, management, iss in authorization responses, key-based client auth', async () => {
    const metadata = (await (await fetch(`${fx.issuer.url}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(metadata['revocation_endpoint']).toBe(`${fx.issuer.url}/token/revocation`);
    expect(metadata['authorization_response_iss_parameter_supported']).toBe(true);
    expect(metadata['grant_types_supported']).toEqual(['authorization_code', 'refresh_token', 'client_credentials']);
    expect(metadata['token_endpoint_auth_methods_supported']).toEqual(expect.arrayContaining(['private_key_jwt', 'client_secret_basic', 'none']));
    expect(metadata['code_challenge_methods_supported']).toEqual(['S256']);
    expect(metadata).not.toHaveProperty('introspection_endpoint');
    expect(metadata).not.toHaveProperty('userinfo_endpoint');
  });

  it('puts iss in the authorization response (RFC 9207), on success and on error', async () => {
    const reg = await register(`${fx.issuer.url}/reg`, MCP_CLIENT);
    const clientId = reg.body['client_id'] as string;
    const start = new URL('/auth', fx.issuer.url);
    start.search = new URLSearchParams({ client_id: clientId, redirect_uri: REDIRECT_URI, response_type: 'code', resource: FILES, scope: 'mcp:files' }).toString();
    // No PKCE: refused, and the error response names the issuer too.
    const callback = await followAuthorization(start, REDIRECT_URI);
    expect(callback.searchParams.get('error')).toBe('invalid_request');
    expect(callback.searchParams.get('iss')).toBe(fx.issuer.url);
  });
});
