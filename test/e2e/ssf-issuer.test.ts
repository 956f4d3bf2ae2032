import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { stringify } from 'yaml';
import type { RunningIssuer } from '../../src/issuer/index.ts';
import { revokeAtIssuer } from '../../src/issuer/revoke-command.ts';
import { AUD, AUD_OTHER, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { MCP_POST_HEADERS, RPC } from '../helpers/rpc.ts';
import { RECEIVER_AUD, until } from '../helpers/transmitter.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { codeFlow, postForm, register, startLoopbackIssuer, tempDir, WORKLOAD } from '../issuer/support.ts';

// Issue 21 §3: the embedded issuer is an SSF transmitter. RFC 7009 revocation, RFC 7592 client
// deletion and `mcp-warden revoke` each publish a SET the gateway pulls (RFC 8936) and acts on.

const POLL_SECRET = 'issuer-poll-secret-0123456789abcdef';
const ADMIN_SECRET = 'issuer-admin-secret-0123456789abcdef';
const REDIRECT_URI = 'http://127.0.0.1:53682/callback';
let dir: Awaited<ReturnType<typeof tempDir>>;
let issuer: RunningIssuer;
let upstream: TestUpstream;
let gw: StartedGateway;
let configFile: string;

beforeAll(async () => {
  dir = await tempDir();
  writeFileSync(join(dir.dir, 'poll.secret'), POLL_SECRET);
  writeFileSync(join(dir.dir, 'admin.secret'), ADMIN_SECRET);
  const ssf = { audience: RECEIVER_AUD, pollSecretFile: join(dir.dir, 'poll.secret'), adminSecretFile: join(dir.dir, 'admin.secret') };
  issuer = await startLoopbackIssuer(join(dir.dir, 'keys.json'), {
    resources: [{ audience: AUD, scopes: ['mcp:tools'] }, { audience: AUD_OTHER, scopes: ['mcp:tools'] }],
    clients: [{ ...WORKLOAD, grant_types: ['client_credentials'], scope: 'mcp:tools' }],
    ssf,
  });
  upstream = await TestUpstream.start();
  const config = twoUpstreamConfig({ issuer: issuer.url, jwksUri: issuer.jwksUri, algorithms: ['ES256'] }, upstream.url, {
    root: { revocation: { audience: RECEIVER_AUD, transmitters: [{ issuer: 'idp', poll: { url: `${issuer.url}/ssf/poll`, intervalMs: 100, authorizationFile: join(dir.dir, 'poll.secret') }, failClosed: true }] } },
  });
  gw = await startGateway(config);
  // The config `mcp-warden revoke` reads: the same issuer, by its listener and admin secret.
  configFile = join(dir.dir, 'revoke.yaml');
  const port = Number(new URL(issuer.url).port);
  writeFileSync(configFile, stringify({ ...config, identity: { signingKeyFile: join(dir.dir, 'gw.jwk') }, authorizationServer: { listen: { host: '127.0.0.1', port }, keysFile: join(dir.dir, 'keys.json'), ssf: { pollSecretFile: ssf.pollSecretFile, adminSecretFile: ssf.adminSecretFile } } }));
  expect(await until(async () => (await request(`${gw.adminUrl}/readyz`)).statusCode === 200, 5_000)).toBe(true);
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
  await issuer?.close();
  await dir?.remove();
});

async function status(token: string): Promise<number> {
  const res = await request(`${gw.url}/mcp`, { method: 'POST', headers: { ...MCP_POST_HEADERS, authorization: `Bearer ${token}` }, body: RPC });
  await res.body.dump();
  return res.statusCode;
}

async function clientToken(clientId: string, secret: string): Promise<string> {
  const res = await postForm(`${issuer.url}/token`, { grant_type: 'client_credentials', resource: AUD, scope: 'mcp:tools' }, { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` });
  expect(res.status).toBe(200);
  return res.body['access_token'] as string;
}

describe('the embedded issuer as SSF transmitter', () => {
  it('publishes SSF configuration metadata and refuses a poll without its secret', async () => {
    const meta = (await (await fetch(`${issuer.url}/.well-known/ssf-configuration`)).json()) as Record<string, unknown>;
    expect(meta).toMatchObject({ issuer: issuer.url, jwks_uri: issuer.jwksUri, delivery_methods_supported: ['urn:ietf:rfc:8936'] });
    const poll = await fetch(`${issuer.url}/ssf/poll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(poll.status).toBe(401);
    const revoke = await fetch(`${issuer.url}/ssf/revoke`, { method: 'POST', headers: { authorization: `Bearer ${POLL_SECRET}`, 'content-type': 'application/json' }, body: '{"client":"workload"}' });
    expect(revoke.status).toBe(401); // the poll secret is not the admin secret
  });

  it('`mcp-warden revoke --jti` cuts that token only', async () => {
    const token = await clientToken(WORKLOAD.client_id, WORKLOAD.client_secret);
    const other = await clientToken(WORKLOAD.client_id, WORKLOAD.client_secret);
    expect(await status(token)).toBe(200);
    await revokeAtIssuer(configFile, { jti: decodeJwt(token).jti as string });
    expect(await until(async () => (await status(token)) === 401, 2_000)).toBe(true);
    expect(await status(other)).toBe(200);
  });

  it('`mcp-warden revoke --client` cuts a cached token of that client within 2 s', async () => {
    const token = await clientToken(WORKLOAD.client_id, WORKLOAD.client_secret);
    expect(await status(token)).toBe(200);
    expect(await status(token)).toBe(200);
    const t0 = Date.now();
    await revokeAtIssuer(configFile, { client: WORKLOAD.client_id });
    expect(await until(async () => (await status(token)) === 401, 2_000)).toBe(true);
    console.log(`embedded issuer: revoke --client refused by the gateway after ${Date.now() - t0} ms`);
    // A token issued after the revocation is the issuer's new word: accepted.
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await status(await clientToken(WORKLOAD.client_id, WORKLOAD.client_secret))).toBe(200);
  });

  it('deleting a client (RFC 7592) cuts its tokens', async () => {
    const reg = await register(`${issuer.url}/reg`, { grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'mcp:tools', response_types: [] });
    expect(reg.status).toBe(201);
    const token = await clientToken(reg.body['client_id'] as string, reg.body['client_secret'] as string);
    expect(await status(token)).toBe(200);
    const del = await fetch(reg.body['registration_client_uri'] as string, { method: 'DELETE', headers: { authorization: `Bearer ${reg.body['registration_access_token'] as string}` } });
    expect(del.status).toBe(204);
    expect(await until(async () => (await status(token)) === 401, 2_000)).toBe(true);
  });

  it('revoking a refresh token (RFC 7009) cuts the access tokens of that grant, not the subject through another client', async () => {
    const client = { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none', scope: 'mcp:tools' };
    const a = (await register(`${issuer.url}/reg`, client)).body['client_id'] as string;
    const b = (await register(`${issuer.url}/reg`, client)).body['client_id'] as string;
    const grantA = await codeFlow(issuer.url, { clientId: a, redirectUri: REDIRECT_URI, resource: AUD, scope: 'mcp:tools' });
    const grantB = await codeFlow(issuer.url, { clientId: b, redirectUri: REDIRECT_URI, resource: AUD, scope: 'mcp:tools' });
    const tokenA = grantA.body['access_token'] as string;
    const tokenB = grantB.body['access_token'] as string;
    expect(await status(tokenA)).toBe(200);
    const res = await fetch(`${issuer.url}/token/revocation`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: grantA.body['refresh_token'] as string, token_type_hint: 'refresh_token', client_id: a }) });
    expect(res.status).toBe(200);
    expect(await until(async () => (await status(tokenA)) === 401, 2_000)).toBe(true);
    expect(await status(tokenB)).toBe(200);
  });
});

describe('rehearse: the revocation drill', () => {
  it('revokes a drill client holding a cached token on two replicas and an open stream, and reports each replica\'s time to refuse it', async () => {
    const { loadConfig } = await import('../../src/config/compile.ts');
    const { revocationDrill } = await import('../../src/rehearse/revocation.ts');
    upstream.sseGate = (i) => (i >= 1 ? new Promise<void>(() => undefined) : Promise.resolve());
    const config = twoUpstreamConfig({ issuer: issuer.url, jwksUri: issuer.jwksUri, algorithms: ['ES256'] }, upstream.url, {
      other: { target: `${upstream.url}/sse` },
      root: { revocation: { audience: RECEIVER_AUD, transmitters: [{ issuer: 'idp', poll: { url: `${issuer.url}/ssf/poll`, intervalMs: 100, authorizationFile: join(dir.dir, 'poll.secret') } }] } },
    });
    const replicas = [await startGateway(config), await startGateway(config)];
    try {
      const results: { drill: string; status: string; detail: string }[] = [];
      await revocationDrill(loadConfig(configFile), replicas.map((r) => r.url), (drill, status, detail) => results.push({ drill, status, detail }));
      console.log(`rehearse revocation drill: ${results[0]?.status} — ${results[0]?.detail}`);
      expect(results).toHaveLength(1);
      expect(results[0]).toMatchObject({ drill: 'revocation kill switch', status: 'pass' });
      expect(results[0]?.detail).toMatch(/refused after \d+ ms; .*refused after \d+ ms; stream: ended after \d+ ms$/);
    } finally {
      upstream.sseGate = undefined;
      for (const r of replicas) await r.close();
    }
  }, 30_000);
});
