import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningIssuer } from '../../src/issuer/index.ts';
import { startTestDemo } from './demo-stack.ts';
import { FILES, NOTES, postForm, startLoopbackIssuer, startupRefusal, tempDir } from './support.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
// oidc-provider keeps an invalid_grant's detail out of the response (it goes to its events only), so
// each refusal below differs from the accepted exchange in exactly the one property it tests.
const REFUSED = { error: 'invalid_grant', error_description: 'grant request is invalid' };

/** A test "cluster": a service-account issuer with a loopback JWKS, and a key it can rotate. */
class TestCluster {
  #server: Server | undefined;
  #keys: { kid: string; privateKey: CryptoKey; jwk: JWK }[] = [];
  jwksRequests = 0;
  url = '';

  static async start(): Promise<TestCluster> {
    const cluster = new TestCluster();
    await cluster.rotate();
    cluster.#server = createServer((req, res) => {
      cluster.jwksRequests++;
      if (req.url !== '/openid/v1/jwks') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: cluster.#keys.map((k) => k.jwk) }));
    });
    await new Promise<void>((resolve) => cluster.#server?.listen(0, '127.0.0.1', resolve));
    cluster.url = `http://127.0.0.1:${(cluster.#server.address() as AddressInfo).port}`;
    return cluster;
  }

  get jwksUri(): string {
    return `${this.url}/openid/v1/jwks`;
  }

  async rotate(): Promise<void> {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const kid = randomUUID();
    this.#keys = [{ kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } }];
  }

  /** A projected service-account token (Kubernetes shape), signed with the current key unless told otherwise. */
  token(audience: string, overrides: JWTPayload = {}, key?: CryptoKey, lifetimeSeconds = 600): Promise<string> {
    const current = this.#keys[0] as { kid: string; privateKey: CryptoKey };
    const now = Math.floor(Date.now() / 1000);
    const payload: JWTPayload = {
      iss: this.url, sub: 'system:serviceaccount:agents:planner', aud: audience, iat: now, exp: now + lifetimeSeconds,
      jti: randomUUID(), 'kubernetes.io': { namespace: 'agents' }, ...overrides,
    };
    return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid: current.kid, typ: 'JWT' }).sign(key ?? current.privateKey);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }
}

describe('workload identity federation: a platform token exchanged for a resource-bound access token (RFC 7523 §2.1)', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let cluster: TestCluster;
  let issuer: RunningIssuer;

  beforeAll(async () => {
    dir = await tempDir();
    cluster = await TestCluster.start();
    issuer = await startLoopbackIssuer(`${dir.dir}/keys.json`, {
      federation: {
        trust: [{
          name: 'cluster', issuer: cluster.url, jwksUri: cluster.jwksUri, algorithms: ['ES256'],
          jwks: { cooldownSeconds: 0 },
          rules: [
            { subject: 'system:serviceaccount:agents:*', claims: {}, clientId: 'agents', scopes: ['mcp:files'], resources: [FILES] },
            // A GitHub Actions-style mapping: subject and an exact claim.
            { subject: 'repo:org/app:ref:refs/heads/main', claims: { repository: 'org/app' }, clientId: 'ci-deploy', scopes: ['mcp:notes'], resources: [NOTES] },
          ],
        }],
      },
    });
  });
  afterAll(async () => {
    await issuer.close();
    await cluster.close();
    await dir.remove();
  });

  function exchange(assertion: string, form: Record<string, string> = {}): ReturnType<typeof postForm> {
    return postForm(`${issuer.url}/token`, { grant_type: JWT_BEARER, client_id: 'agents', assertion, resource: FILES, scope: 'mcp:files', ...form });
  }

  it('exchanges a service-account token for a 5-minute token for one resource, with no stored secret', async () => {
    const res = await exchange(await cluster.token(issuer.url));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ token_type: 'Bearer', expires_in: 300, scope: 'mcp:files' });
    const { payload } = await jwtVerify(res.body['access_token'] as string, createRemoteJWKSet(new URL(issuer.jwksUri)), { issuer: issuer.url, audience: FILES, typ: 'at+jwt' });
    expect(payload).toMatchObject({ sub: 'agents', client_id: 'agents', scope: 'mcp:files' });
    expect((payload.exp as number) - (payload.iat as number)).toBe(300);
  });

  it('refuses a dynamic registration that asks for the JWT-bearer grant', async () => {
    const res = await fetch(`${issuer.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_types: [JWT_BEARER], response_types: [], token_endpoint_auth_method: 'none' }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_client_metadata' });
  });

  it('advertises the JWT-bearer grant', async () => {
    const metadata = (await (await fetch(`${issuer.url}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(metadata['grant_types_supported']).toContain(JWT_BEARER);
  });

  it('refuses a token from an untrusted issuer, before fetching any key', async () => {
    const before = cluster.jwksRequests;
    const stranger = await cluster.token(issuer.url, { iss: 'https://other-cluster.example.test' });
    const res = await exchange(stranger);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject(REFUSED);
    expect(cluster.jwksRequests).toBe(before);
  });

  it('refuses a token signed by a key the platform does not publish', async () => {
    const forged = await cluster.token(issuer.url, {}, (await generateKeyPair('ES256')).privateKey);
    const res = await exchange(forged);
    expect(res.body['error']).toBe('invalid_grant');
  });

  it('refuses a token for another audience', async () => {
    const res = await exchange(await cluster.token('https://some-other-service.example.test'));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject(REFUSED);
  });

  it('refuses a replayed jti', async () => {
    const once = await cluster.token(issuer.url);
    expect((await exchange(once)).status).toBe(200);
    const replay = await exchange(once);
    expect(replay.status).toBe(400);
    expect(replay.body).toMatchObject(REFUSED);
  });

  it('refuses an assertion that lives longer than 10 minutes, or carries no jti', async () => {
    const long = await exchange(await cluster.token(issuer.url, {}, undefined, 3_600));
    expect(long.body).toMatchObject(REFUSED);
    const noJti = await exchange(await cluster.token(issuer.url, { jti: undefined }));
    expect(noJti.body).toMatchObject(REFUSED);
  });

  it('refuses a subject no rule maps, and an assertion presented for another client', async () => {
    const other = await exchange(await cluster.token(issuer.url, { sub: 'system:serviceaccount:payments:api' }));
    expect(other.body).toMatchObject(REFUSED);
    const ci = await exchange(await cluster.token(issuer.url), { client_id: 'ci-deploy', resource: NOTES, scope: 'mcp:notes' });
    expect(ci.body).toMatchObject(REFUSED);
  });

  it('maps a CI subject only with its exact claim', async () => {
    const ci = (claims: JWTPayload): Promise<string> => cluster.token(issuer.url, { sub: 'repo:org/app:ref:refs/heads/main', ...claims });
    const ok = await exchange(await ci({ repository: 'org/app' }), { client_id: 'ci-deploy', resource: NOTES, scope: 'mcp:notes' });
    expect(ok.status).toBe(200);
    const fork = await exchange(await ci({ repository: 'fork/app' }), { client_id: 'ci-deploy', resource: NOTES, scope: 'mcp:notes' });
    expect(fork.body['error']).toBe('invalid_grant');
  });

  it('refuses a resource or a scope the rule does not allow', async () => {
    const resource = await exchange(await cluster.token(issuer.url), { resource: NOTES, scope: 'mcp:notes' });
    expect(resource.body['error']).toBe('invalid_target');
    const scope = await exchange(await cluster.token(issuer.url), { scope: 'mcp:files mcp:files:admin' });
    expect(scope.body['error']).toBe('invalid_scope');
  });

  it('follows a key rotation of the platform (unknown kid: one refetch)', async () => {
    await cluster.rotate();
    const res = await exchange(await cluster.token(issuer.url));
    expect(res.status).toBe(200);
  });

  it('refuses a federation rule that names a scope outside its resources', async () => {
    const message = await startupRefusal(startLoopbackIssuer(`${dir.dir}/bad.json`, {
      federation: { trust: [{ name: 'c', issuer: cluster.url, algorithms: ['HS256'], rules: [{ subject: '*', clientId: 'x', scopes: ['mcp:notes'], resources: [FILES] }] }] },
    }));
    expect(message).toMatch(/"HS256" is not an allowed asymmetric algorithm/);
    expect(message).toMatch(/subject: must name a subject or a pattern narrower than "\*"/);
    expect(message).toMatch(/scopes: "mcp:notes" is not a scope of its resources/);
  });
});

describe('a federated workload through the gateway', () => {
  let cluster: TestCluster;
  let demo: Awaited<ReturnType<typeof startTestDemo>>;

  beforeAll(async () => {
    cluster = await TestCluster.start();
    demo = await startTestDemo(`
  federation:
    trust:
      - name: cluster
        issuer: ${cluster.url}
        jwksUri: ${cluster.jwksUri}
        algorithms: [ES256]
        rules:
          - subject: "system:serviceaccount:agents:*"
            clientId: agents
            scopes: [mcp:demo]
            resources: [demo]
`);
  });
  afterAll(async () => {
    await demo?.close();
    await cluster?.close();
  });

  it('exchanges its service-account token and calls a tool as the mapped client', async () => {
    const issuerUrl = demo.stack.issuer.url;
    const audience = demo.stack.config.upstreams[0]?.audience as string;
    const res = await postForm(`${issuerUrl}/token`, { grant_type: JWT_BEARER, client_id: 'agents', assertion: await cluster.token(issuerUrl), resource: audience, scope: 'mcp:demo' });
    expect(res.status).toBe(200);
    const client = new Client({ name: 'workload', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(audience), { requestInit: { headers: { authorization: `Bearer ${res.body['access_token'] as string}` } } }));
    try {
      const who = await client.callTool({ name: 'whoami', arguments: {} });
      const identity = JSON.parse((who.content as { text: string }[])[0]?.text ?? '{}') as Record<string, unknown>;
      expect(identity).toMatchObject({ sub: 'agents', clientId: 'agents', scopes: ['mcp:demo'], originalIssuer: issuerUrl });
      // The mapped client may not reach the other upstream.
      const ops = demo.stack.config.upstreams[1]?.audience as string;
      const refused = await fetch(ops, { method: 'POST', headers: { authorization: `Bearer ${res.body['access_token'] as string}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
      expect(refused.status).toBe(401);
    } finally {
      await client.close();
    }
  });
});

describe('a platform JWKS outage', () => {
  it('fails closed once the last good keys are past their stale window', async () => {
    const dir = await tempDir();
    const cluster = await TestCluster.start();
    const issuer = await startLoopbackIssuer(`${dir.dir}/keys.json`, {
      federation: { trust: [{ name: 'cluster', issuer: cluster.url, jwksUri: cluster.jwksUri, algorithms: ['ES256'], jwks: { cacheMaxAgeSeconds: 1, staleIfErrorSeconds: 0, timeoutMs: 500 }, rules: [{ subject: 'system:serviceaccount:agents:*', clientId: 'agents', scopes: ['mcp:files'], resources: [FILES] }] }] },
    });
    const exchange = async (): Promise<Awaited<ReturnType<typeof postForm>>> =>
      postForm(`${issuer.url}/token`, { grant_type: JWT_BEARER, client_id: 'agents', assertion: await cluster.token(issuer.url), resource: FILES, scope: 'mcp:files' });
    try {
      expect((await exchange()).status).toBe(200);
      const assertion = cluster.token(issuer.url);
      await cluster.close();
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const res = await postForm(`${issuer.url}/token`, { grant_type: JWT_BEARER, client_id: 'agents', assertion: await assertion, resource: FILES, scope: 'mcp:files' });
      // oidc-provider hides the detail of any 5xx, so the refusal is a 400 that says what happened.
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: 'temporarily_unavailable', error_description: 'the platform issuer keys are unavailable' });
    } finally {
      await issuer.close();
      await dir.remove();
    }
  }, 15_000);
});
