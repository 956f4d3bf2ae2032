import type { ProviderClient, Ttl } from 'oidc-provider';
import { describe, expect, it } from 'vitest';
import { validateIssuerOptions } from '../../src/issuer/options.ts';
import { buildProviderConfiguration } from '../../src/issuer/provider-config.ts';
import { createResourcePolicy } from '../../src/issuer/resources.ts';
import { FILES, RESOURCES } from './support.ts';

const client: ProviderClient = { clientId: 'c', clientAuthMethod: 'client_secret_basic', redirectUris: [], grantTypes: [], grantTypeAllowed: () => false };
const ctx = {};

describe('resource policy', () => {
  const policy = createResourcePolicy(RESOURCES, { ttlSeconds: 300, alg: 'ES256', signingKid: 'kid-1' });

  it('describes a declared audience as a JWT resource signed with the current key', async () => {
    await expect(policy.getResourceServerInfo(ctx, FILES, client)).resolves.toEqual({
      scope: 'mcp:files mcp:files:admin',
      audience: FILES,
      accessTokenTTL: 300,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'ES256', kid: 'kid-1' } },
    });
  });

  it('refuses any other audience with invalid_target', async () => {
    await expect(policy.getResourceServerInfo(ctx, 'http://127.0.0.1:8080/', client)).rejects.toMatchObject({ error: 'invalid_target' });
  });

  it('never picks a default when the request names no resource', async () => {
    await expect(policy.defaultResource(ctx, client)).rejects.toMatchObject({ error: 'invalid_target' });
  });

  it('lets a code bound to one resource be redeemed without naming it, and no more', async () => {
    await expect(policy.defaultResource(ctx, client, [FILES])).resolves.toBe(FILES);
    await expect(policy.defaultResource(ctx, client, [FILES, 'x'])).resolves.toEqual([FILES, 'x']);
  });
});

describe('access token lifetime guard', () => {
  const settings = validateIssuerOptions({ host: '127.0.0.1', port: 0, keysFile: '/unused', resources: RESOURCES, accessTokenTtlSeconds: 90 });
  const configuration = buildProviderConfiguration(
    settings,
    { id: 'k', signingKid: 'k', keys: [] },
    { adapter: () => ({}), cookieKeys: ['x'] },
  );

  for (const name of ['AccessToken', 'ClientCredentials']) {
    it(`${name}: refuses a token without a resource server, whatever path led there`, () => {
      const ttl = configuration.ttl[name] as Exclude<Ttl, number>;
      expect(() => ttl(ctx, {}, client)).toThrow(expect.objectContaining({ error: 'invalid_target' }));
      expect(ttl(ctx, { resourceServer: {} }, client)).toBe(90);
    });
  }
});
