import { describe, expect, it } from 'vitest';
import { useLoopbackIssuer } from './support.ts';

describe('issuer metadata', () => {
  const fx = useLoopbackIssuer();

  it('derives the issuer from the ephemeral listen address when none is configured', () => {
    expect(fx.issuer.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(fx.issuer.jwksUri).toBe(`${fx.issuer.url}/jwks`);
  });

  for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    it(`publishes ${path} with the exact issuer, endpoints and S256-only PKCE`, async () => {
      const res = await fetch(new URL(path, fx.issuer.url));
      expect(res.status).toBe(200);
      const metadata = (await res.json()) as Record<string, unknown>;
      expect(metadata['issuer']).toBe(fx.issuer.url);
      expect(metadata['jwks_uri']).toBe(fx.issuer.jwksUri);
      expect(metadata['token_endpoint']).toBe(`${fx.issuer.url}/token`);
      expect(metadata['registration_endpoint']).toBe(`${fx.issuer.url}/reg`);
      expect(metadata['authorization_endpoint']).toBe(`${fx.issuer.url}/auth`);
      expect(metadata['code_challenge_methods_supported']).toEqual(['S256']);
      expect(metadata['response_types_supported']).toEqual(['code']);
      expect(metadata['grant_types_supported']).toEqual(['authorization_code', 'refresh_token', 'client_credentials']);
      expect(metadata['scopes_supported']).toEqual(['openid', 'mcp:files', 'mcp:files:admin', 'mcp:notes']);
      expect(metadata['id_token_signing_alg_values_supported']).toEqual(['ES256']);
      // Nothing that could hand out audience-less tokens.
      expect(metadata).not.toHaveProperty('userinfo_endpoint');
      expect(metadata).not.toHaveProperty('introspection_endpoint');
    });
  }

  it('publishes only public signing keys', async () => {
    const jwks = (await (await fetch(fx.issuer.jwksUri)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(jwks.keys[0]).not.toHaveProperty('d');
    expect(jwks.keys[0]).not.toHaveProperty('activeAtMs');
  });

  it('serves no development interaction pages', async () => {
    const res = await fetch(new URL('/interaction/anything', fx.issuer.url));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
  });
});
