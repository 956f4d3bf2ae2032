import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt } from 'jose';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { postTo } from '../helpers/http.ts';
import type { Reply } from '../helpers/wire.ts';

let idp: TestIdp;
let upstream: TestUpstream;
let gw: StartedGateway;
beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = await TestUpstream.start({ sessions: true });
  gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url, { mcp: { target: `${upstream.url}/mcp` } }));
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
  await idp?.close();
});

const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };
const post = (token: string | undefined, sessionId: string, body: unknown): Promise<Reply> =>
  postTo(`${gw.url}/mcp`, token, { headers: { ...MCP_HEADERS, 'mcp-session-id': sessionId }, body: JSON.stringify(body) });

/**
 * Requests that reached the upstream other than alice's own (her SDK client keeps a GET stream and
 * sends notifications in the background, so bytes alone cannot tell).
 */
function foreignArrivals(): number {
  return upstream.received.filter((r) => {
    const assertion = r.headers.get('x-mcp-identity')?.[0];
    return assertion === undefined || decodeJwt(assertion).sub !== 'alice' || decodeJwt(assertion).client_id !== 'test-client';
  }).length;
}

/** Alice initializes through the SDK client; returns the session id the client was given. */
async function aliceSession(): Promise<{ client: Client; sessionId: string }> {
  const token = await idp.token(AUD, { sub: 'alice' });
  const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  const client = new Client({ name: 'alice', version: '1.0.0' });
  await client.connect(transport);
  return { client, sessionId: transport.sessionId as string };
}

describe('MCP sessions are bound to the identity that created them', () => {
  it('shows the client a bound id, restores the upstream id on the way in, and survives a token refresh', async () => {
    const { client, sessionId } = await aliceSession();
    const [upstreamId, mac] = [sessionId.slice(0, sessionId.lastIndexOf('.')), sessionId.slice(sessionId.lastIndexOf('.') + 1)];
    expect(upstreamId).toMatch(/^[0-9a-f-]{36}$/);
    expect(mac).toHaveLength(22);
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    expect(upstream.last()?.headers.get('mcp-session-id')).toEqual([upstreamId]);
    // A fresh token for the same identity (new jti, new exp) keeps the session.
    const refreshed = await idp.token(AUD, { sub: 'alice' });
    const res = await post(refreshed, sessionId, { jsonrpc: '2.0', id: 9, method: 'tools/list' });
    expect(res.status).toBe(200);
    await client.close();
  });

  it('SC-129 bob presenting alice\'s session gets 404 and the upstream receives nothing', async () => {
    const { client, sessionId } = await aliceSession();
    const bob = await idp.token(AUD, { sub: 'bob' });
    upstream.reset();
    const res = await post(bob, sessionId, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami', arguments: {} } });
    expect(res.status).toBe(404);
    expect(JSON.parse(res.text)).toMatchObject({ reason: 'session_unknown' });
    // Same subject from another client is another identity too.
    const aliceOtherClient = await idp.token(AUD, { sub: 'alice', client_id: 'other-client' });
    expect((await post(aliceOtherClient, sessionId, { jsonrpc: '2.0', id: 3, method: 'tools/list' })).status).toBe(404);
    // The raw upstream id (MAC stripped) is not a usable session either.
    expect((await post(bob, sessionId.slice(0, sessionId.lastIndexOf('.')), { jsonrpc: '2.0', id: 4, method: 'tools/list' })).status).toBe(404);
    expect(foreignArrivals()).toBe(0);
    await client.close();
  });

  it('SC-130 a live session id without a token gets 401 with no error code', async () => {
    const { client, sessionId } = await aliceSession();
    upstream.reset();
    const res = await post(undefined, sessionId, { jsonrpc: '2.0', id: 2, method: 'tools/list' });
    expect(res.status).toBe(401);
    expect(foreignArrivals()).toBe(0);
    await client.close();
  });

  it('SC-132 bob cannot attach to alice\'s SSE stream', async () => {
    const { client, sessionId } = await aliceSession();
    const bob = await idp.token(AUD, { sub: 'bob' });
    upstream.reset();
    const res = await request(`${gw.url}/mcp`, { method: 'GET', headers: { authorization: `Bearer ${bob}`, accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' } });
    expect(res.statusCode).toBe(404);
    await res.body.dump();
    expect(foreignArrivals()).toBe(0);
    await client.close();
  });

  it('SC-148 malformed session ids (10 KB, DEL, space, duplicated header) get 400 and reach nobody', async () => {
    const alice = await idp.token(AUD, { sub: 'alice' });
    upstream.reset();
    for (const bad of ['a'.repeat(10_000), 'abc\x7fdef', 'abc def']) {
      const res = await request(`${gw.url}/mcp`, { method: 'POST', headers: { ...MCP_HEADERS, authorization: `Bearer ${alice}`, 'mcp-session-id': bad }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' }).catch(() => undefined);
      // undici refuses to send some of these itself; those never reach the gateway either.
      if (res !== undefined) {
        expect([400, 431]).toContain(res.statusCode);
        await res.body.dump();
      }
    }
    const dup = await request(`${gw.url}/mcp`, { method: 'POST', headers: [...Object.entries(MCP_HEADERS).flat(), 'authorization', `Bearer ${alice}`, 'mcp-session-id', 'a.b', 'mcp-session-id', 'c.d'], body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
    expect(dup.statusCode).toBe(400);
    await dup.body.dump();
    // ../../x is visible ASCII but carries no valid MAC: unknown session.
    expect((await post(alice, '../../x', { jsonrpc: '2.0', id: 1, method: 'tools/list' })).status).toBe(404);
    expect(upstream.bytes).toBe(0);
  });

  it('a stateless request (no session id) keeps working, as the 2026-07-28 protocol requires', async () => {
    const alice = await idp.token(AUD, { sub: 'alice' });
    const res = await request(`${gw.url}/mcp`, {
      method: 'POST',
      headers: { ...MCP_HEADERS, authorization: `Bearer ${alice}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
    });
    expect(res.statusCode).toBe(200);
    expect(String(res.headers['mcp-session-id'])).toMatch(/\.[A-Za-z0-9_-]{22}$/);
    await res.body.dump();
  });
});
