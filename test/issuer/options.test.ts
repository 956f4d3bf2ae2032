import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type IssuerOptions } from '../../src/issuer/index.ts';
import { RESOURCES, startupRefusal, tempDir } from './support.ts';

describe('issuer start-up refusals', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => {
    await dir.remove();
  });

  const base = (): IssuerOptions => ({ host: '127.0.0.1', port: 0, keysFile: `${dir.dir}/keys.json`, resources: RESOURCES });

  const refusal = (options: IssuerOptions): Promise<string> => startupRefusal(startIssuer(options));

  it('requires an initial access token when the issuer is not loopback', async () => {
    expect(await refusal({ ...base(), issuer: 'https://issuer.example.test' })).toMatch(/registration\.initialAccessToken: is required/);
  });

  it('requires an initial access token when the listener is not loopback, whatever the issuer says', async () => {
    expect(await refusal({ ...base(), host: '0.0.0.0', issuer: 'http://127.0.0.1:9400' })).toMatch(/registration\.initialAccessToken: is required/);
  });

  it('refuses a plain-http issuer on a non-loopback host', async () => {
    expect(await refusal({ ...base(), issuer: 'http://issuer.example.test', registration: { initialAccessToken: 'x'.repeat(32) } })).toMatch(/issuer: must use https/);
  });

  it('refuses an issuer with a path, and a weak initial access token', async () => {
    const message = await refusal({ ...base(), issuer: 'https://issuer.example.test/oauth', registration: { initialAccessToken: 'short' } });
    expect(message).toMatch(/issuer: must be an origin/);
    expect(message).toMatch(/initialAccessToken: must be at least 32 characters/);
  });

  it('refuses a static client_credentials client without a secret, or named like an audience', async () => {
    const message = await refusal({
      ...base(),
      clients: [
        { client_id: 'a', grant_types: ['client_credentials'], token_endpoint_auth_method: 'none' },
        { client_id: RESOURCES[0].audience, client_secret: 'x'.repeat(32), grant_types: ['client_credentials'] },
      ],
    });
    expect(message).toMatch(/clients\[0\]: client_credentials needs a client_secret/);
    expect(message).toMatch(/clients\[1\]\.client_id: must not equal a resource audience/);
  });

  it('caps the access token lifetime at one hour', async () => {
    expect(await refusal({ ...base(), accessTokenTtlSeconds: 3601 })).toMatch(/accessTokenTtlSeconds/);
  });

  it('refuses to start without an audience, or with a fragment in one', async () => {
    expect(await refusal({ ...base(), resources: [] })).toMatch(/resources: must list at least one audience/);
    expect(await refusal({ ...base(), resources: [{ audience: 'http://127.0.0.1:8080/mcp#x', scopes: [] }] })).toMatch(/without a fragment/);
  });
});
