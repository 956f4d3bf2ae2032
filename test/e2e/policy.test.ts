import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, AUD_OTHER, PUBLIC_URL, startGateway, type StartedGateway } from '../helpers/gateway.ts';

const AUD_STREAM = `${PUBLIC_URL}/stream`;
let idp: TestIdp;
let sse: TestUpstream; // answers POSTs with SSE
let json: TestUpstream; // answers POSTs with plain JSON
let gw: StartedGateway;

const policy = {
  default: 'deny',
  tools: [
    { name: 'search', scopes: ['mcp:tools'] },
    { name: 'delete_*', scopes: ['mcp:admin'] },
    { name: 'admin_reset', deny: true },
  ],
  rules: [{ method: 'tools/list' }, { method: 'prompts/list' }, { method: 'prompts/get', prompt: 'summarize' }, { method: 'resources/list' }, { method: 'resources/read', resource: 'file:///docs/' }],
};

beforeAll(async () => {
  idp = await TestIdp.start();
  sse = await TestUpstream.start();
  json = await TestUpstream.start({ jsonResponse: true });
  const issuers = ['idp'];
  gw = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    publicUrl: PUBLIC_URL,
    issuers: [{ name: 'idp', issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'], clockSkewSeconds: 0 }],
    upstreams: [
      { name: 'mcp', path: '/mcp', target: `${sse.url}/mcp`, issuers, scopes: ['mcp:tools'], ...policy },
      { name: 'other', path: '/other-mcp', target: `${json.url}/mcp`, issuers, scopes: ['mcp:tools'], ...policy },
      { name: 'stream', path: '/stream', target: `${sse.url}/sse`, issuers, scopes: ['mcp:tools'] },
    ],
    identity: { signingKeyFile: 'gateway.jwk' },
  });
});
afterAll(async () => {
  await gw?.close();
  await sse?.close();
  await json?.close();
  await idp?.close();
});

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
async function rpc(path: string, token: string, body: unknown, extra: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  const res = await request(gw.url + path, { method: 'POST', headers: { ...HEADERS, authorization: `Bearer ${token}`, ...extra }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}
const call = (id: number, name: string): unknown => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });

/** JSON-RPC result of a response, whether it came as JSON or as an SSE event. */
function resultOf(text: string): { tools?: { name: string }[]; prompts?: { name: string }[]; resources?: { uri: string }[]; content?: unknown } {
  const data = text.trim().startsWith('{') ? text : text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('');
  return (JSON.parse(data) as { result: ReturnType<typeof resultOf> }).result;
}

describe('per-tool policy through the gateway', () => {
  it('runs an allowed tool; a tool needing a scope the caller lacks never reaches the upstream (403 with step-up challenge)', async () => {
    const token = await idp.token(AUD, { scope: 'mcp:tools' });
    sse.reset();
    const ok = await rpc('/mcp', token, call(1, 'search'));
    expect(ok.status).toBe(200);
    expect(JSON.stringify(resultOf(ok.text).content)).toContain('results for');
    const denied = await rpc('/mcp', token, call(7, 'delete_repo'));
    expect(denied.status).toBe(403);
    expect(denied.headers['www-authenticate']).toBe('Bearer resource_metadata="https://gw.test/.well-known/oauth-protected-resource/mcp", error="insufficient_scope", error_description="the token lacks a required scope", scope="mcp:tools mcp:admin"');
    expect(JSON.parse(denied.text)).toEqual({ jsonrpc: '2.0', id: 7, error: { code: -32003, message: 'the token lacks a required scope', data: { reason: 'insufficient_scope', scope: 'mcp:tools mcp:admin' } } });
    expect(sse.calls()).toEqual(['tools/call:search']);
    const admin = await idp.token(AUD, { scope: 'mcp:tools mcp:admin' });
    expect((await rpc('/mcp', admin, call(8, 'delete_repo'))).status).toBe(200);
    expect(sse.calls()).toEqual(['tools/call:search', 'tools/call:delete_repo']);
  });

  it('SC-135 a tool no rule allows (default deny) and a deny rule: 403, upstream untouched', async () => {
    const token = await idp.token(AUD, { scope: 'mcp:tools mcp:admin' });
    sse.reset();
    for (const name of ['read_file', 'admin_reset']) {
      const res = await rpc('/mcp', token, call(3, name));
      expect(res.status).toBe(403);
      expect(res.headers['www-authenticate']).toBeUndefined();
      expect(JSON.parse(res.text)).toMatchObject({ id: 3, error: { code: -32003, data: { reason: 'policy_denied' } } });
    }
    expect(sse.bytes).toBe(0);
  });

  it('SC-142 an unknown method or a resource outside the allowed prefix is refused under default deny', async () => {
    const token = await idp.token(AUD);
    sse.reset();
    expect((await rpc('/mcp', token, { jsonrpc: '2.0', id: 1, method: 'tools/call2', params: { name: 'search' } })).status).toBe(403);
    expect((await rpc('/mcp', token, { jsonrpc: '2.0', id: 2, method: 'resources/read', params: { uri: 'file:///etc/shadow' } })).status).toBe(403);
    expect(sse.bytes).toBe(0);
    expect((await rpc('/mcp', token, { jsonrpc: '2.0', id: 3, method: 'resources/read', params: { uri: 'file:///docs/readme.md' } })).status).toBe(200);
  });

  it('SC-136 a batch hiding a denied call behind an allowed one is refused whole; batches are invalid from 2025-06-18', async () => {
    const token = await idp.token(AUD);
    sse.reset();
    const batch = [call(1, 'search'), call(2, 'delete_repo')];
    const old = await rpc('/mcp', token, batch, { 'mcp-protocol-version': '2025-03-26' });
    expect(old.status).toBe(403);
    expect(JSON.parse(old.text)).toMatchObject({ id: 2, error: { data: { reason: 'insufficient_scope' } } });
    const current = await rpc('/mcp', token, batch, { 'mcp-protocol-version': '2025-06-18' });
    expect(current.status).toBe(400);
    expect(JSON.parse(current.text)).toMatchObject({ id: null, error: { code: -32600, data: { reason: 'batch_not_allowed' } } });
    expect(sse.bytes).toBe(0);
  });

  it('SC-143 tools/list lists only the tools the caller may call, for SSE and for JSON answers', async () => {
    const user = await idp.token(AUD, { scope: 'mcp:tools' });
    const admin = await idp.token(AUD, { scope: 'mcp:tools mcp:admin' });
    const names = async (path: string, token: string): Promise<string[]> => {
      const res = await rpc(path, token, { jsonrpc: '2.0', id: 5, method: 'tools/list' });
      expect(res.status).toBe(200);
      return (resultOf(res.text).tools ?? []).map((t) => t.name).sort();
    };
    const sseRes = await rpc('/mcp', user, { jsonrpc: '2.0', id: 5, method: 'tools/list' });
    expect(String(sseRes.headers['content-type'])).toContain('text/event-stream');
    expect(await names('/mcp', user)).toEqual(['search']);
    expect(await names('/mcp', admin)).toEqual(['delete_repo', 'search']);
    const jsonRes = await rpc('/other-mcp', await idp.token(AUD_OTHER), { jsonrpc: '2.0', id: 5, method: 'tools/list' });
    expect(String(jsonRes.headers['content-type'])).toContain('application/json');
    expect(Number(jsonRes.headers['content-length'])).toBe(Buffer.byteLength(jsonRes.text));
    expect(await names('/other-mcp', await idp.token(AUD_OTHER))).toEqual(['search']);
    // Prompts and resources too.
    const prompts = await rpc('/mcp', user, { jsonrpc: '2.0', id: 6, method: 'prompts/list' });
    expect(resultOf(prompts.text).prompts?.map((p) => p.name)).toEqual(['summarize']);
    const resources = await rpc('/other-mcp', await idp.token(AUD_OTHER), { jsonrpc: '2.0', id: 7, method: 'resources/list' });
    expect(resultOf(resources.text).resources?.map((r) => r.uri)).toEqual(['file:///docs/readme.md']);
  });

  it('an MCP SDK client sees the filtered tool list', async () => {
    const token = await idp.token(AUD, { scope: 'mcp:tools' });
    const client = new Client({ name: 'sdk', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['search']);
    await expect(client.callTool({ name: 'delete_repo', arguments: {} })).rejects.toThrow();
    await client.close();
  });

  it('SC-153 a 5 MiB body is refused with 413 before the upstream sees a byte', async () => {
    const token = await idp.token(AUD);
    sse.reset();
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'search', arguments: { q: 'x'.repeat(5 * 1024 * 1024) } } });
    const res = await rpc('/mcp', token, big);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.text).reason).toBe('body_too_large');
    expect(sse.bytes).toBe(0);
    // Without a declared length (chunked): refused once the cap is passed, the connection then closed.
    const chunked = await request(gw.url + '/mcp', { method: 'POST', headers: { ...HEADERS, authorization: `Bearer ${token}` }, body: Readable.from([big.slice(0, 1024 * 1024), big.slice(1024 * 1024)]) });
    expect(chunked.statusCode).toBe(413);
    expect(chunked.headers['connection']).toBe('close');
    expect(JSON.parse(await chunked.body.text()).reason).toBe('body_too_large');
    expect(sse.bytes).toBe(0);
    expect((await rpc('/mcp', token, call(1, 'search'))).status).toBe(200);
  });

  it('SC-159 huge batches and deep nesting are refused quickly, without crashing', async () => {
    const token = await idp.token(AUD);
    sse.reset();
    const many = '[' + Array.from({ length: 100_000 }, (_, i) => `{"jsonrpc":"2.0","id":${i},"method":"ping"}`).join(',') + ']';
    expect((await rpc('/mcp', token, many, { 'mcp-protocol-version': '2025-03-26' })).status).toBe(413);
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expect((await rpc('/mcp', token, deep, { 'mcp-protocol-version': '2025-03-26' })).status).toBe(400);
    const wide = '[' + Array.from({ length: 101 }, (_, i) => `{"jsonrpc":"2.0","id":${i},"method":"ping"}`).join(',') + ']';
    expect((await rpc('/mcp', token, wide, { 'mcp-protocol-version': '2025-03-26' })).status).toBe(400);
    expect(sse.bytes).toBe(0);
    expect((await rpc('/mcp', token, call(1, 'search'))).status).toBe(200);
  });

  it('refuses invalid JSON (-32700), non-JSON-RPC bodies, other media types and unknown protocol versions with 400/415', async () => {
    const token = await idp.token(AUD);
    sse.reset();
    const parse = await rpc('/mcp', token, '{"jsonrpc":');
    expect(parse.status).toBe(400);
    expect(JSON.parse(parse.text)).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } });
    expect((await rpc('/mcp', token, { jsonrpc: '1.0', id: 1, method: 'tools/list' })).status).toBe(400);
    expect((await rpc('/mcp', token, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 42 } })).status).toBe(400);
    expect((await rpc('/mcp', token, call(1, 'search'), { 'content-type': 'text/plain' })).status).toBe(415);
    const version = await rpc('/mcp', token, call(1, 'search'), { 'mcp-protocol-version': '1999-01-01' });
    expect(version.status).toBe(400);
    // 2026-07-28 schema UnsupportedProtocolVersionError: JSON-RPC -32022 for the request's id.
    expect(JSON.parse(version.text)).toMatchObject({ id: 1, error: { code: -32022, data: { reason: 'protocol_version_unsupported', requested: '1999-01-01' } } });
    expect(sse.bytes).toBe(0);
  });

  it('2026-07-28 Mcp-Method/Mcp-Name must mirror the body: a header cannot smuggle a denied tool', async () => {
    const token = await idp.token(AUD);
    sse.reset();
    const v = { 'mcp-protocol-version': '2026-07-28' };
    // Header says an allowed tool, body calls a denied one: 400, never authorized on the header.
    const smuggle = await rpc('/mcp', token, call(4, 'delete_repo'), { ...v, 'mcp-method': 'tools/call', 'mcp-name': 'search' });
    expect(smuggle.status).toBe(400);
    expect(JSON.parse(smuggle.text)).toMatchObject({ id: 4, error: { data: { reason: 'header_mismatch' } } });
    expect((await rpc('/mcp', token, call(4, 'search'), { ...v, 'mcp-method': 'tools/list', 'mcp-name': 'search' })).status).toBe(400);
    expect(sse.bytes).toBe(0);
  });

  it('lets client notifications through (202, no body)', async () => {
    const token = await idp.token(AUD);
    const res = await rpc('/mcp', token, { jsonrpc: '2.0', method: 'notifications/initialized' });
    expect(res.status).toBe(202);
    expect(res.text).toBe('');
  });
});

describe('streams end with the token', () => {
  it('SC-144 closes an SSE stream opened by a token expiring in 2 s, audits it, and refuses the reconnect', async () => {
    const exp = Math.floor(Date.now() / 1000) + 2;
    const token = await idp.token(AUD_STREAM, { exp });
    sse.sseEvents = 1_000;
    sse.sseClosed = 0;
    sse.sseGate = () => new Promise((r) => setTimeout(r, 50));
    const res = await request(`${gw.url}/stream`, { method: 'GET', headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
    expect(res.statusCode).toBe(200);
    let events = 0;
    for await (const chunk of res.body) events += String(chunk).split('\n\n').length - 1;
    const endedAt = Date.now() / 1000;
    // Ended at exp (skew 0), within scheduling noise; far fewer than the 1,000 events the upstream had.
    expect(endedAt).toBeGreaterThanOrEqual(exp - 1);
    expect(endedAt).toBeLessThan(exp + 1);
    expect(events).toBeLessThan(1_000);
    const deadline = Date.now() + 2_000;
    while (sse.sseClosed === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(sse.sseClosed).toBe(1);
    expect(gw.logs.some((l) => l.includes('"event":"stream_closed"') && l.includes('"reason":"token_expired"'))).toBe(true);
    const again = await request(`${gw.url}/stream`, { method: 'GET', headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
    expect(again.statusCode).toBe(401);
    expect(JSON.parse(await again.body.text()).reason).toBe('token_expired');
    sse.sseGate = undefined;
  }, 15_000);
});

describe('DNS rebinding', () => {
  it('SC-145 refuses a request whose Origin is not allowed, even with a valid token; the upstream receives nothing', async () => {
    const token = await idp.token(AUD);
    sse.reset();
    for (const origin of ['http://evil.test', 'http://127.0.0.1:8080', 'null', 'https://gw.test.evil.test']) {
      const res = await rpc('/mcp', token, call(1, 'search'), { origin });
      expect(res.status).toBe(403);
      expect(JSON.parse(res.text).reason).toBe('origin_forbidden');
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
    }
    expect(sse.bytes).toBe(0);
    // The gateway's own origin (publicUrl) is allowed, and answered with that origin only, never "*".
    const own = await rpc('/mcp', token, call(1, 'search'), { origin: 'https://gw.test' });
    expect(own.status).toBe(200);
    expect(own.headers['access-control-allow-origin']).toBe('https://gw.test');
    // A rebinding page cannot add a bearer token (it is no ambient credential), so a Host of the
    // attacker's choosing without an Origin still meets the 401.
    const res = await request(`${gw.url}/mcp`, { method: 'POST', headers: { ...HEADERS, host: 'evil.test:8080' }, body: JSON.stringify(call(1, 'search')) });
    expect(res.statusCode).toBe(401);
    await res.body.dump();
  });
});
