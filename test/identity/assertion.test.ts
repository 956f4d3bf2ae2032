import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { createProxyServer } from 'http-proxy-3';
import { request } from 'undici';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { createIdentityVerifier, requireIdentity, type VerifiedIdentity } from '../../src/identity/upstream.ts';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, AUD_OTHER, PUBLIC_URL, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { RPC } from '../helpers/rpc.ts';

/** An MCP server that trusts only the gateway's assertion, via the exported helper (README example). */
async function startVerifyingServer(gatewayJwksUrl: () => string, audience: string): Promise<{ url: string; server: Server; rejected: number }> {
  const state = { url: '', server: undefined as unknown as Server, rejected: 0 };
  let verifier: ReturnType<typeof requireIdentity> | undefined;
  state.server = createServer((req: IncomingMessage & { identity?: VerifiedIdentity }, res) => {
    verifier ??= requireIdentity({ jwksUrl: gatewayJwksUrl(), audience, issuer: PUBLIC_URL });
    verifier(req, res, () => {
      const mcp = new McpServer({ name: 'verifying', version: '1.0.0' });
      mcp.registerTool('whoami', { description: 'who is calling' }, () => ({
        content: [{ type: 'text', text: JSON.stringify(req.identity) }],
      }));
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on('close', () => void mcp.close());
      void mcp.connect(transport).then(() => transport.handleRequest(req, res));
    });
    res.on('finish', () => {
      if (res.statusCode === 401) state.rejected++;
    });
  });
  await new Promise<void>((r) => state.server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(state.server.address() as AddressInfo).port}`;
  return state;
}

let idp: TestIdp;
let echo: TestUpstream;
let verifying: Awaited<ReturnType<typeof startVerifyingServer>>;
let hop: { server: Server; url: string; forwarded: number };
let gw: StartedGateway;

beforeAll(async () => {
  idp = await TestIdp.start();
  echo = await TestUpstream.start();
  verifying = await startVerifyingServer(() => `${gw.url}/.well-known/jwks.json`, AUD);
  // A second, plain HTTP proxy between gateway and upstream (e.g. a mesh sidecar).
  const proxy = createProxyServer({ target: verifying.url });
  hop = { server: undefined as unknown as Server, url: '', forwarded: 0 };
  hop.server = createServer((req, res) => {
    hop.forwarded++;
    proxy.web(req, res);
  });
  await new Promise<void>((r) => hop.server.listen(0, '127.0.0.1', r));
  hop.url = `http://127.0.0.1:${(hop.server.address() as AddressInfo).port}`;
  gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, echo.url, {
    mcp: { target: `${hop.url}/mcp`, identity: { claims: ['email', 'groups'] } },
    other: { identity: { informationalHeaders: true } },
  }));
});
afterAll(async () => {
  await gw?.close();
  hop?.server.closeAllConnections();
  await new Promise<void>((r) => hop.server.close(() => r()));
  verifying?.server.closeAllConnections();
  await new Promise<void>((r) => verifying.server.close(() => r()));
  await echo?.close();
  await idp?.close();
});

async function gatewayJwks(): Promise<JSONWebKeySet> {
  const res = await request(`${gw.url}/.well-known/jwks.json`);
  expect(res.headers['cache-control']).toBe('public, max-age=60');
  return (await res.body.json()) as JSONWebKeySet;
}

describe('the identity assertion', () => {
  it('SC-175 an MCP server using the verify helper sees sub, scope, client_id and only the listed claims, across a second plain proxy hop', async () => {
    const token = await idp.token(AUD, { sub: 'alice', client_id: 'desk-app', scope: 'mcp:tools files:read', email: 'alice@example.com', groups: ['sre'], roles: ['admin'] });
    const client = new Client({ name: 'e2e', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    const identity = JSON.parse((result.content as { text: string }[])[0]?.text ?? '{}') as VerifiedIdentity;
    expect(identity.sub).toBe('alice');
    expect(identity.clientId).toBe('desk-app');
    expect(identity.scopes).toEqual(['mcp:tools', 'files:read']);
    expect(identity.originalIssuer).toBe(idp.issuer);
    // SC-175: only the claims the policy lists are copied; others (roles) are not.
    expect(identity.claims['email']).toBe('alice@example.com');
    expect(identity.claims['groups']).toEqual(['sre']);
    expect(identity.claims['roles']).toBeUndefined();
    expect(hop.forwarded).toBeGreaterThan(0);
    expect(verifying.rejected).toBe(0);
    await client.close();
  });

  it('SC-172 is signed by the gateway key (EdDSA), iss = gateway, aud = this upstream, exp ≤ now+60 s, unique jti', async () => {
    const token = await idp.token(AUD_OTHER, { sub: 'alice' });
    const seen: string[] = [];
    for (const t of [token, await idp.token(AUD_OTHER, { sub: 'alice' })]) {
      const res = await request(`${gw.url}/other-mcp`, { method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: RPC });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      const values = echo.last()?.headers.get('x-mcp-identity') ?? [];
      expect(values).toHaveLength(1);
      seen.push(values[0] as string);
    }
    const jwks = await gatewayJwks();
    for (const assertion of seen) {
      const { payload, protectedHeader } = await jwtVerify(assertion, createLocalJWKSet(jwks), { issuer: PUBLIC_URL, audience: AUD_OTHER, typ: 'mcp-identity+jwt', algorithms: ['EdDSA'] });
      expect(protectedHeader.alg).toBe('EdDSA');
      expect(payload.sub).toBe('alice');
      expect((payload.exp as number) - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(60);
      expect(payload.orig_iss).toBe(idp.issuer);
      expect(typeof payload.jti).toBe('string');
    }
    expect(decodeJwt(seen[0] as string).jti).not.toBe(decodeJwt(seen[1] as string).jti);
  });

  it('sets informational headers when the policy asks, always overwriting client-supplied ones', async () => {
    const token = await idp.token(AUD_OTHER, { sub: 'alice', client_id: 'cli' });
    const res = await request(`${gw.url}/other-mcp`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-mcp-subject': 'admin', 'X-MCP-Scopes': 'everything' }, body: RPC });
    await res.body.dump();
    const h = echo.last()?.headers;
    expect(h?.get('x-mcp-subject')).toEqual(['alice']);
    expect(h?.get('x-mcp-client-id')).toEqual(['cli']);
    expect(h?.get('x-mcp-scopes')).toEqual(['mcp:tools']);
  });

  it('an assertion replayed to another upstream fails that upstream\'s audience check', async () => {
    const token = await idp.token(AUD_OTHER);
    const res = await request(`${gw.url}/other-mcp`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: RPC });
    await res.body.dump();
    const assertion = echo.last()?.headers.get('x-mcp-identity')?.[0] as string;
    const verifyAsMcp = createIdentityVerifier({ keys: await gatewayJwks(), audience: AUD, issuer: PUBLIC_URL });
    expect(await verifyAsMcp({ headers: { 'x-mcp-identity': assertion } })).toEqual({ ok: false, error: 'audience_mismatch' });
    // Straight at the verifying upstream, bypassing the gateway: refused.
    const direct = await request(`${verifying.url}/mcp`, { method: 'POST', headers: { 'x-mcp-identity': assertion, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
    expect(direct.statusCode).toBe(401);
    await direct.body.dump();
  });

  it('SC-100 a client-forged X-MCP-Identity never reaches the upstream; exactly one gateway-signed assertion does', async () => {
    const evil = await idp.sign({ sub: 'admin', aud: AUD_OTHER, iss: PUBLIC_URL, exp: Math.floor(Date.now() / 1000) + 60 });
    const token = await idp.token(AUD_OTHER, { sub: 'alice' });
    const res = await request(`${gw.url}/other-mcp`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-mcp-identity': evil, 'X-Identity-Assertion': evil }, body: RPC });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    const h = echo.last()?.headers;
    expect(h?.get('x-mcp-identity')).toHaveLength(1);
    expect(h?.get('x-mcp-identity')?.[0]).not.toBe(evil);
    expect(h?.has('x-identity-assertion')).toBe(false);
    expect(decodeProtectedHeader(h?.get('x-mcp-identity')?.[0] as string).alg).toBe('EdDSA');
  });

  it('refuses to start with a world-readable signing key (SC-168)', async () => {
    const { chmodSync } = await import('node:fs');
    const { loadGatewayKeys } = await import('../../src/identity/keys.ts');
    const file = gw.configFile.replace('config.yaml', 'gateway.jwk');
    expect(JSON.parse(readFileSync(file, 'utf8')).d).toBeTypeOf('string');
    chmodSync(file, 0o644);
    await expect(loadGatewayKeys(file, 'config.yaml')).rejects.toThrow(/accessible to other users/);
    chmodSync(file, 0o600);
  });
});
