import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/compile.ts';
import type { RunningIssuer } from '../../src/issuer/index.ts';
import { FILES, clientCredentials, postForm, register, startLoopbackIssuer, startupRefusal, tempDir } from './support.ts';

const WORKLOAD_METADATA = { grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic', scope: 'mcp:files' };

async function manage(uri: string, method: 'GET' | 'PUT', token: string, body?: object): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(uri, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('secrets of dynamically registered clients expire and rotate (RFC 7591 / RFC 7592)', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let issuer: RunningIssuer;
  let shortLived: RunningIssuer;

  beforeAll(async () => {
    dir = await tempDir();
    issuer = await startLoopbackIssuer(`${dir.dir}/keys.json`);
    shortLived = await startLoopbackIssuer(`${dir.dir}/short.json`, { registration: { clientSecretTtlSeconds: 1 } });
  });
  afterAll(async () => {
    await issuer.close();
    await shortLived.close();
    await dir.remove();
  });

  it('gives a registered secret a 30-day expiry and a registration access token to manage it', async () => {
    const before = Math.floor(Date.now() / 1000);
    const { status, body } = await register(`${issuer.url}/reg`, WORKLOAD_METADATA);
    expect(status).toBe(201);
    const expiresAt = body['client_secret_expires_at'] as number;
    expect(expiresAt).toBeGreaterThanOrEqual(before + 30 * 86_400);
    expect(expiresAt).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 30 * 86_400);
    expect(body['registration_client_uri']).toBe(`${issuer.url}/reg/${body['client_id'] as string}`);
    expect(typeof body['registration_access_token']).toBe('string');
    // Reading the registration does not extend or reveal a new secret.
    const read = await manage(body['registration_client_uri'] as string, 'GET', body['registration_access_token'] as string);
    expect(read.status).toBe(200);
    expect(read.body['client_secret_expires_at']).toBe(expiresAt);
  });

  it('lets an update rotate the secret but not widen the scope or change the grants', async () => {
    const reg = await register(`${issuer.url}/reg`, WORKLOAD_METADATA);
    const { registration_access_token: rat, registration_client_uri: uri, client_secret: _s, client_secret_expires_at: _e, client_id_issued_at: _i, ...metadata } = reg.body;
    const wider = await manage(uri as string, 'PUT', rat as string, { ...metadata, scope: 'mcp:files mcp:files:admin' });
    expect(wider.status).toBe(400);
    expect(wider.body).toMatchObject({ error: 'invalid_client_metadata', error_description: "an update cannot widen a client_credentials client's scope" });
    // A refused update leaves the registration access token valid.
    const grants = await manage(uri as string, 'PUT', rat as string, { ...metadata, grant_types: ['client_credentials', 'authorization_code'], response_types: ['code'], redirect_uris: ['http://127.0.0.1:5000/cb'] });
    expect(grants.status).toBe(400);
    expect(grants.body['error_description']).toBe('grant_types cannot be changed by an update; register a new client');
    const same = await manage(uri as string, 'PUT', rat as string, metadata);
    expect(same.status).toBe(200);
    expect(same.body['scope']).toBe('mcp:files');
  });

  it('refuses an expired secret, and a rotation through the management endpoint issues a working one', async () => {
    const reg = await register(`${shortLived.url}/reg`, WORKLOAD_METADATA);
    const client = { client_id: reg.body['client_id'] as string, client_secret: reg.body['client_secret'] as string };
    expect((await clientCredentials(shortLived, { resource: FILES, scope: 'mcp:files' }, client)).status).toBe(200);
    // 1 s lifetime plus oidc-provider's clock tolerance (5 s, provider-config.ts).
    await new Promise((resolve) => setTimeout(resolve, 7_000));
    const expired = await clientCredentials(shortLived, { resource: FILES, scope: 'mcp:files' }, client);
    // oidc-provider answers an expired secret with 400 (a wrong one gets 401), invalid_client either way.
    expect(expired.status).toBe(400);
    expect(expired.body).toMatchObject({ error: 'invalid_client', error_description: expect.stringMatching(/client secret is expired/) });

    const { registration_access_token: rat, registration_client_uri: uri, client_secret: _s, client_secret_expires_at: _e, client_id_issued_at: _i, ...metadata } = reg.body;
    const rotated = await manage(uri as string, 'PUT', rat as string, { ...metadata, client_id: client.client_id });
    expect(rotated.status).toBe(200);
    expect(rotated.body['client_secret']).not.toBe(client.client_secret);
    expect(rotated.body['client_secret_expires_at']).toBeGreaterThan(Math.floor(Date.now() / 1000) - 1);
    expect(rotated.body['registration_access_token']).not.toBe(rat);
    const fresh = { client_id: client.client_id, client_secret: rotated.body['client_secret'] as string };
    expect((await clientCredentials(shortLived, { resource: FILES, scope: 'mcp:files' }, fresh)).status).toBe(200);
    expect((await clientCredentials(shortLived, { resource: FILES, scope: 'mcp:files' }, client)).status).toBe(401);
    // The used registration access token was replaced: it does not work twice.
    expect((await manage(uri as string, 'GET', rat as string)).status).toBe(401);
  }, 15_000);
});

describe('private_key_jwt for static clients (RFC 7523 §2.2)', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let issuer: RunningIssuer;
  let key: CryptoKey;

  beforeAll(async () => {
    dir = await tempDir();
    const pair = await generateKeyPair('ES256');
    key = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), alg: 'ES256', use: 'sig', kid: 'k1' };
    issuer = await startLoopbackIssuer(`${dir.dir}/keys.json`, {
      clients: [{ client_id: 'keyed', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] }, scope: 'mcp:files' }],
    });
  });
  afterAll(async () => {
    await issuer.close();
    await dir.remove();
  });

  function assertion(signingKey: CryptoKey, claims: Record<string, unknown> = {}): Promise<string> {
    return new SignJWT({ jti: randomUUID(), ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer('keyed').setSubject('keyed').setAudience(issuer.url).setIssuedAt().setExpirationTime('60s')
      .sign(signingKey);
  }

  function token(clientAssertion: string): ReturnType<typeof postForm> {
    return postForm(`${issuer.url}/token`, {
      grant_type: 'client_credentials', resource: FILES, scope: 'mcp:files',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: clientAssertion,
    });
  }

  it('issues a token to a client that proves its key, with no secret stored anywhere', async () => {
    const res = await token(await assertion(key));
    expect(res.status).toBe(200);
    expect(res.body['scope']).toBe('mcp:files');
  });

  it('refuses an assertion signed by another key, and a replayed one', async () => {
    const other = (await generateKeyPair('ES256')).privateKey;
    const forged = await token(await assertion(other));
    expect(forged.status).toBe(401);
    expect(forged.body['error']).toBe('invalid_client');
    const once = await assertion(key);
    expect((await token(once)).status).toBe(200);
    const replay = await token(once);
    expect(replay.status).toBe(401);
    expect(replay.body['error']).toBe('invalid_client');
  });

  it('refuses a private_key_jwt client without keys, or with a secret beside them', async () => {
    const message = await startupRefusal(startLoopbackIssuer(`${dir.dir}/bad.json`, {
      clients: [
        { client_id: 'a', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', scope: 'mcp:files' },
        { client_id: 'b', client_secret: 'x'.repeat(32), grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://keys.example.test/jwks', scope: 'mcp:files' },
      ],
    }));
    expect(message).toMatch(/clients\[0\]\.jwks: private_key_jwt needs jwks or jwks_uri/);
    expect(message).toMatch(/clients\[1\]\.client_secret: must not be set for a private_key_jwt client/);
  });
});

describe('validate on static issuer clients', () => {
  const config = (client: string): string => `
publicUrl: http://127.0.0.1:8080
issuers: [{ name: local, issuer: http://127.0.0.1:9400, algorithms: [ES256] }]
upstreams: [{ name: files, path: /files/mcp, target: http://127.0.0.1:3001/mcp, issuers: [local], scopes: [mcp:files] }]
identity: { signingKeyFile: ./gateway.jwk }
authorizationServer:
  keysFile: ./issuer-keys.json
  clients:
    - ${client}
`;

  it('warns about a static client with a plain secret', () => {
    const { warnings } = loadConfigText(config('{ client_id: ci, client_secret: "0123456789abcdef0123456789abcdef", grant_types: [client_credentials], scope: mcp:files }'));
    expect(warnings.map((w) => `${w.key}: ${w.message}`)).toContainEqual(expect.stringMatching(/^authorizationServer\.clients\.0\.client_secret: a static client with a plain secret never rotates it/));
  });

  it('does not warn about a private_key_jwt client', () => {
    const { warnings } = loadConfigText(config('{ client_id: ci, grant_types: [client_credentials], token_endpoint_auth_method: private_key_jwt, jwks_uri: "https://ci.example.test/jwks", scope: mcp:files }'));
    expect(warnings.filter((w) => w.key.startsWith('authorizationServer'))).toEqual([]);
  });
});

describe('validate on the issuer section', () => {
  it('reports what mcp-warden issuer would refuse, with the line and the YAML key', () => {
    const text = `publicUrl: http://127.0.0.1:8080
issuers: [{ name: local, issuer: http://127.0.0.1:9400, algorithms: [ES256] }]
upstreams: [{ name: files, path: /files/mcp, target: http://127.0.0.1:3001/mcp, issuers: [local], scopes: [mcp:files] }]
identity: { signingKeyFile: ./gateway.jwk }
authorizationServer:
  keysFile: ./issuer-keys.json
  federation:
    trust:
      - name: cluster
        issuer: https://kubernetes.default.svc
        algorithms: [RS256]
        rules:
          - { subject: "system:serviceaccount:agents:*", clientId: agents, scopes: [mcp:admin], resources: [files] }
`;
    expect(() => loadConfigText(text)).toThrow(/config\.yaml:13: authorizationServer\.federation\.trust\.0\.rules\.0\.scopes: "mcp:admin" is not a scope of its resources/);
  });
});
