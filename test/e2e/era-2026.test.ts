import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, type Dispatcher } from 'undici';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { StatelessUpstream } from '../helpers/stateless-upstream.ts';
import { AUD, AUD_OTHER, PUBLIC_URL, startGateway, type StartedGateway } from '../helpers/gateway.ts';

// MCP 2026-07-28 through the gateway, point by point (issue 16): request metadata headers, their
// Base64 form, renumbered errors, server/discover and subscriptions/listen under `default: deny`,
// the stream cap, cache scope of filtered lists, Mcp-Session-Id ignored, Mcp-Param-* mirrored.

const V = '2026-07-28';
let idp: TestIdp;
let up: StatelessUpstream;
let legacy: TestUpstream;
let gw: StartedGateway;

beforeAll(async () => {
  idp = await TestIdp.start();
  up = await StatelessUpstream.start();
  legacy = await TestUpstream.start({ sessions: true });
  const issuers = ['idp'];
  gw = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    publicUrl: PUBLIC_URL,
    issuers: [{ name: 'idp', issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'], clockSkewSeconds: 0 }],
    upstreams: [
      {
        name: 'mcp', path: '/mcp', target: up.url, issuers, scopes: ['mcp:tools'], default: 'deny',
        tools: [{ name: 'search' }, { name: 'wetter/heute' }, { name: 'gr*' }],
        rules: [{ method: 'tools/list' }, { method: 'resources/list' }, { method: 'resources/read', resource: 'file:///docs/' }],
      },
      { name: 'other', path: '/other-mcp', target: `${legacy.url}/mcp`, issuers, scopes: ['mcp:tools'] },
    ],
    limits: { maxStreamsPerIdentity: 2 },
    identity: { signingKeyFile: 'gateway.jwk' },
  });
});
afterAll(async () => {
  await gw?.close();
  await up?.close();
  await legacy?.close();
  await idp?.close();
});

const b64 = (s: string): string => `=?base64?${Buffer.from(s, 'utf8').toString('base64')}?=`;
const meta = { 'io.modelcontextprotocol/protocolVersion': V, 'io.modelcontextprotocol/clientCapabilities': {} };
const msg = (id: number, method: string, params: Record<string, unknown> = {}): unknown => ({ jsonrpc: '2.0', id, method, params: { ...params, _meta: meta } });
const heads = (method: string, name?: string): Record<string, string> => ({ 'mcp-protocol-version': V, 'mcp-method': method, ...(name === undefined ? {} : { 'mcp-name': name }) });

interface Answer { status: number; headers: Record<string, unknown>; text: string; json: { id?: unknown; result?: Record<string, unknown>; error?: { code: number; data?: Record<string, unknown> } } }
async function post(path: string, token: string, body: unknown, headers: Record<string, string>): Promise<Answer> {
  const res = await request(gw.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`, ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.body.text();
  const data = text.trim().startsWith('{') ? text : text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('');
  return { status: res.statusCode, headers: res.headers, text, json: data === '' ? {} : (JSON.parse(data) as Answer['json']) };
}
const call = (token: string, id: number, name: string, args: Record<string, unknown>, extra: Record<string, string> = {}): Promise<Answer> =>
  post('/mcp', token, msg(id, 'tools/call', { name, arguments: args }), { ...heads('tools/call', /^[\x21-\x7e]+$/.test(name) ? name : b64(name)), ...extra });

/** Expects a refusal the upstream never saw: 400 and JSON-RPC HeaderMismatch for this id. */
async function mismatch(answer: Promise<Answer>, id: number | null): Promise<void> {
  up.reset();
  const a = await answer;
  expect(a.status).toBe(400);
  expect(a.json).toMatchObject({ id, error: { code: -32020, data: { reason: 'header_mismatch' } } });
  expect(up.bytes).toBe(0);
}

describe('MCP 2026-07-28 request metadata headers', () => {
  it('1. an encoded Mcp-Name is decoded before it is compared: a tool whose name needs encoding can be called', async () => {
    const token = await idp.token(AUD);
    up.reset();
    const ok = await call(token, 1, 'grüße', {});
    expect(ok.status).toBe(200);
    expect(ok.json.result).toMatchObject({ content: [{ text: 'called grüße' }] });
    // The header reaches the upstream as the client sent it (the upstream decodes it too).
    expect(up.last()?.headers.get('mcp-name')).toEqual([b64('grüße')]);
    // A plain name may be sent encoded as well.
    expect((await post('/mcp', token, msg(2, 'tools/call', { name: 'search', arguments: {} }), heads('tools/call', b64('search')))).status).toBe(200);
  });

  it('1. an encoded Mcp-Name that decodes to another name, or is not canonical Base64 or UTF-8, is a HeaderMismatch', async () => {
    const token = await idp.token(AUD);
    const body = msg(3, 'tools/call', { name: 'grüße', arguments: {} });
    await mismatch(post('/mcp', token, body, heads('tools/call', b64('delete_repo'))), 3);
    await mismatch(post('/mcp', token, body, heads('tools/call', '=?base64?Z3LDvMOfZQ?=')), 3); // unpadded
    await mismatch(post('/mcp', token, body, heads('tools/call', '=?base64?/w==?=')), 3); // not UTF-8
    await mismatch(post('/mcp', token, msg(4, 'tools/call', { name: '=?base64?c2VhcmNo?=', arguments: {} }), heads('tools/call', '=?base64?c2VhcmNo?=')), 4);
  });

  it('2. a 2026-07-28 request without Mcp-Method, or without Mcp-Name on tools/call, prompts/get and resources/read, is refused', async () => {
    const token = await idp.token(AUD);
    await mismatch(post('/mcp', token, msg(5, 'tools/list'), { 'mcp-protocol-version': V }), 5);
    await mismatch(post('/mcp', token, msg(6, 'tools/call', { name: 'search', arguments: {} }), heads('tools/call')), 6);
    await mismatch(post('/mcp', token, msg(7, 'prompts/get', { name: 'summarize' }), heads('prompts/get')), 7);
    await mismatch(post('/mcp', token, msg(8, 'resources/read', { uri: 'file:///docs/readme.md' }), heads('resources/read')), 8);
    up.reset();
    const read = await post('/mcp', token, msg(9, 'resources/read', { uri: 'file:///docs/readme.md' }), heads('resources/read', 'file:///docs/readme.md'));
    expect(read.status).toBe(200);
  });

  it('2. a header/body mismatch answers -32020 on 2026-07-28 (the client refetches and retries) and -32600 before', async () => {
    const token = await idp.token(AUD);
    await mismatch(post('/mcp', token, msg(10, 'tools/call', { name: 'delete_repo', arguments: {} }), heads('tools/call', 'search')), 10);
    await mismatch(post('/mcp', token, msg(11, 'tools/list'), heads('tools/call', 'search')), 11);
    // The body's _meta protocol version must be the header's.
    await mismatch(post('/mcp', token, msg(12, 'tools/list'), { ...heads('tools/list'), 'mcp-protocol-version': '2025-11-25' }), 12);
    const old = await post('/mcp', token, { jsonrpc: '2.0', id: 13, method: 'tools/list' }, { 'mcp-protocol-version': '2025-11-25', 'mcp-method': 'tools/call' });
    expect(old.status).toBe(400);
    expect(old.json).toMatchObject({ id: 13, error: { code: -32600, data: { reason: 'header_mismatch' } } });
  });

  it('a 2026-07-28 POST carrying a JSON-RPC response is refused (clients answer by retrying, MRTR); an MRTR retry is judged like any call', async () => {
    const token = await idp.token(AUD);
    up.reset();
    const a = await post('/mcp', token, { jsonrpc: '2.0', id: 15, result: {} }, { 'mcp-protocol-version': V, 'mcp-method': 'response' });
    expect(a.status).toBe(400);
    expect(a.json).toMatchObject({ id: 15, error: { code: -32600, data: { reason: 'rpc_invalid' } } });
    expect(up.bytes).toBe(0);
    const retry = { name: 'delete_repo', arguments: {}, inputResponses: { confirm: { action: 'accept', content: {} } }, requestState: 'opaque' };
    const denied = await post('/mcp', token, msg(16, 'tools/call', retry), heads('tools/call', 'delete_repo'));
    expect(denied.status).toBe(403);
    expect(up.bytes).toBe(0);
    const allowed = await post('/mcp', token, msg(17, 'tools/call', { ...retry, name: 'search' }), heads('tools/call', 'search'));
    expect(allowed.status).toBe(200);
    expect(JSON.parse(up.last()?.body ?? '{}')).toMatchObject({ params: { requestState: 'opaque', inputResponses: { confirm: { action: 'accept' } } } });
  });

  it('3. an unsupported MCP-Protocol-Version answers -32022 with the supported versions, the requested one and the request id', async () => {
    const token = await idp.token(AUD);
    up.reset();
    const a = await post('/mcp', token, msg(14, 'tools/list'), { ...heads('tools/list'), 'mcp-protocol-version': '2099-01-01' });
    expect(a.status).toBe(400);
    expect(a.json).toMatchObject({ id: 14, error: { code: -32022, data: { requested: '2099-01-01', reason: 'protocol_version_unsupported' } } });
    expect(a.json.error?.data?.['supported']).toEqual(['2026-07-28', '2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05']);
    expect(up.bytes).toBe(0);
  });
});

describe('MCP 2026-07-28 lifecycle and streams', () => {
  it('4. server/discover passes a default-deny upstream with the upstream scopes alone, and not without them', async () => {
    up.reset();
    const a = await post('/mcp', await idp.token(AUD), msg(20, 'server/discover'), heads('server/discover'));
    expect(a.status).toBe(200);
    expect(a.json.result).toMatchObject({ supportedVersions: ['2026-07-28'] });
    const unscoped = await post('/mcp', await idp.token(AUD, { scope: 'other' }), msg(21, 'server/discover'), heads('server/discover'));
    expect(unscoped.status).toBe(403);
    expect(up.received.length).toBe(1);
  });

  it('4-5. subscriptions/listen opens under default: deny; the third stream of one identity is refused under a cap of two', async () => {
    const alice = await idp.token(AUD);
    const open = (id: number, token = alice): Promise<Dispatcher.ResponseData> => request(gw.url + '/mcp', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`, ...heads('subscriptions/listen') },
      body: JSON.stringify(msg(id, 'subscriptions/listen', { notifications: { toolsListChanged: true } })),
    });
    const streams = [await open(30), await open(31)];
    for (const s of streams) {
      expect(s.statusCode).toBe(200);
      const first = await s.body[Symbol.asyncIterator]().next();
      expect(String(first.value)).toContain('notifications/subscriptions/acknowledged');
    }
    up.reset();
    const third = await open(32);
    expect(third.statusCode).toBe(429);
    expect(JSON.parse(await third.body.text())).toMatchObject({ reason: 'too_many_streams' });
    expect(up.bytes).toBe(0);
    const bob = await open(33, await idp.token(AUD, { sub: 'bob' }));
    expect(bob.statusCode).toBe(200);
    bob.body.destroy();
    for (const s of streams) s.body.destroy();
  });

  it('7. a 2026-07-28 request carrying Mcp-Session-Id is served, the header neither checked nor forwarded; before 2026 it is still checked', async () => {
    const token = await idp.token(AUD);
    up.reset();
    const a = await post('/mcp', token, msg(40, 'tools/list'), { ...heads('tools/list'), 'mcp-session-id': 'someone-elses.session' });
    expect(a.status).toBe(200);
    expect(up.last()?.headers.has('mcp-session-id')).toBe(false);
    legacy.reset();
    const old = await post('/other-mcp', await idp.token(AUD_OTHER), { jsonrpc: '2.0', id: 41, method: 'tools/list' }, { 'mcp-protocol-version': '2025-11-25', 'mcp-session-id': 'someone-elses.session' });
    expect(old.status).toBe(404);
    expect(legacy.bytes).toBe(0);
  });
});

describe('MCP 2026-07-28 cache scope of filtered lists', () => {
  for (const framing of ['JSON', 'SSE'] as const) {
    it(`6. a filtered list says cacheScope "private", ttlMs kept (${framing})`, async () => {
      up.sse = framing === 'SSE';
      try {
        const token = await idp.token(AUD);
        const tools = await post('/mcp', token, msg(50, 'tools/list'), heads('tools/list'));
        expect(tools.status).toBe(200);
        expect(tools.json.result).toMatchObject({ cacheScope: 'private', ttlMs: 60_000 });
        expect((tools.json.result?.['tools'] as { name: string }[]).map((t) => t.name)).toEqual(['search', 'wetter/heute', 'grüße']);
        const resources = await post('/mcp', token, msg(51, 'resources/list'), heads('resources/list'));
        expect(resources.json.result).toMatchObject({ cacheScope: 'private', ttlMs: 5_000, resources: [{ uri: 'file:///docs/readme.md' }] });
        expect(resources.text).not.toContain('shadow');
      } finally {
        up.sse = false;
      }
    });
  }
});

describe('MCP 2026-07-28 Mcp-Param-* headers, learned from the tools/list the gateway filters', () => {
  beforeAll(async () => {
    // The client lists first (as the SDK does); the gateway learns the x-mcp-header marks from that answer.
    const listed = await post('/mcp', await idp.token(AUD), msg(60, 'tools/list'), heads('tools/list'));
    expect(listed.status).toBe(200);
  });

  it('a call whose Mcp-Param-* headers mirror its arguments passes, the headers reach the upstream as sent', async () => {
    const token = await idp.token(AUD);
    up.reset();
    const a = await call(token, 61, 'search', { region: 'us-west1', limit: 42, q: 'x' }, { 'mcp-param-region': 'us-west1', 'mcp-param-limit': '42.0' });
    expect(a.status).toBe(200);
    expect(up.last()?.headers.get('mcp-param-region')).toEqual(['us-west1']);
    expect(up.last()?.headers.get('mcp-param-limit')).toEqual(['42.0']);
    // Encoded values are decoded before comparing; nested properties are mirrored too.
    expect((await call(token, 62, 'search', { region: 'Zürich ' }, { 'mcp-param-region': b64('Zürich ') })).status).toBe(200);
    expect((await call(token, 63, 'wetter/heute', { ort: { stadt: 'Köln' } }, { 'mcp-param-stadt': b64('Köln') })).status).toBe(200);
    // A null or absent value has no header.
    expect((await call(token, 64, 'search', { region: null, q: 'x' })).status).toBe(200);
  });

  it('a call whose Mcp-Param-* headers do not mirror its arguments is refused with 400 / -32020, nothing forwarded', async () => {
    const token = await idp.token(AUD);
    await mismatch(call(token, 65, 'search', { region: 'us-west1' }), 65); // header omitted
    await mismatch(call(token, 66, 'search', { region: 'us-west1' }, { 'mcp-param-region': 'eu-west1' }), 66);
    await mismatch(call(token, 67, 'search', { q: 'x' }, { 'mcp-param-region': 'us-west1' }), 67); // no value to mirror
    await mismatch(call(token, 68, 'search', { limit: 42 }, { 'mcp-param-limit': '43' }), 68);
    await mismatch(call(token, 69, 'search', { region: 'Zürich' }, { 'mcp-param-region': '=?base64?not base64?=' }), 69);
    await mismatch(call(token, 70, 'wetter/heute', { ort: { stadt: 'Köln' } }, { 'mcp-param-stadt': b64('Bonn') }), 70);
  });

  it('a Mcp-Param-* header no listed tool declares is forwarded and left to the upstream', async () => {
    const token = await idp.token(AUD);
    up.reset();
    const a = await call(token, 71, 'search', {}, { 'mcp-param-tenant': 'acme' });
    expect(a.status).toBe(200);
    expect(up.last()?.headers.get('mcp-param-tenant')).toEqual(['acme']);
  });
});

describe('MCP 2026-07-28 subscriptions/listen stream contents and lifetime', () => {
  const listen = (token: string, id: number): Promise<Dispatcher.ResponseData> => request(gw.url + '/mcp', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`, ...heads('subscriptions/listen') },
    body: JSON.stringify(msg(id, 'subscriptions/listen', { notifications: { resourceSubscriptions: ['file:///docs/readme.md', 'file:///etc/shadow'] } })),
  });
  /** Reads the stream until `until` is in what arrived, the stream ends, or the time is up. */
  async function readUntil(res: Dispatcher.ResponseData, until: string | undefined, ms: number): Promise<{ text: string; ended: boolean }> {
    let text = '';
    const it = res.body[Symbol.asyncIterator]();
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const next = await Promise.race([it.next(), new Promise<'time'>((r) => setTimeout(() => r('time'), deadline - Date.now()))]);
      if (next === 'time') break;
      if (next.done === true) return { text, ended: true };
      text += String(next.value);
      if (until !== undefined && text.includes(until)) break;
    }
    return { text, ended: false };
  }
  const waitFor = async (cond: () => boolean): Promise<void> => {
    for (let i = 0; i < 50 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  };

  it('a notification about a resource the caller may not read is dropped, like its listing entry; others pass', async () => {
    await waitFor(() => up.listeners.length === 0);
    const res = await listen(await idp.token(AUD), 80);
    expect(res.statusCode).toBe(200);
    await waitFor(() => up.listeners.length === 1);
    const sub = { 'io.modelcontextprotocol/subscriptionId': 80 };
    up.notify({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri: 'file:///etc/shadow', _meta: sub } });
    up.notify({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri: 'file:///docs/readme.md', _meta: sub } });
    up.notify({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { _meta: sub } });
    up.notify({ jsonrpc: '2.0', method: 'notifications/tools/list_changed', params: { _meta: sub } });
    const { text } = await readUntil(res, 'list_changed', 3_000);
    res.body.destroy();
    // The acknowledgement names only the subscriptions the caller will be served.
    expect(text).toContain('"notifications/subscriptions/acknowledged","params":{"notifications":{"resourceSubscriptions":["file:///docs/readme.md"]}');
    expect(text).toContain('file:///docs/readme.md');
    expect(text).toContain('notifications/tools/list_changed');
    expect(text).not.toContain('shadow');
    expect(text.match(/resources\/updated/g)?.length).toBe(1);
  });

  it('the listen stream ends when the token that opened it expires', async () => {
    await waitFor(() => up.listeners.length === 0);
    const now = Math.floor(Date.now() / 1000);
    const res = await listen(await idp.token(AUD, { iat: now, exp: now + 2 }), 81);
    expect(res.statusCode).toBe(200);
    const started = Date.now();
    const { ended } = await readUntil(res, undefined, 6_000);
    expect(ended).toBe(true);
    expect(Date.now() - started).toBeLessThan(4_000);
    await waitFor(() => up.listeners.length === 0);
    expect(up.listeners.length).toBe(0); // the upstream exchange was ended too
  });
});

// Attack/spec reading: methods the 2026-07-28 revision removed (changelog: resources/(un)subscribe for
// subscriptions/listen, ping, logging/setLevel, the handshake, tasks/result and tasks/list) were judged
// by their 2025 meaning: a subscribe without params answered 400/-32600, one with a readable URI was
// forwarded. Transports "Protocol Version Header": a method the server does not implement is 404 with
// -32601 Method not found.
describe('MCP 2026-07-28 methods the revision removed', () => {
  it('resources/subscribe, resources/unsubscribe, ping, logging/setLevel and tasks/list answer 404 / -32601 for their id, nothing forwarded; 2025 requests still reach the upstream', async () => {
    const token = await idp.token(AUD);
    up.reset();
    const cases: [number, string, Record<string, unknown>][] = [
      [90, 'resources/subscribe', { uri: 'file:///docs/readme.md' }],
      [91, 'resources/subscribe', {}],
      [92, 'resources/unsubscribe', { uri: 'file:///docs/readme.md' }],
      [93, 'ping', {}],
      [94, 'logging/setLevel', { level: 'debug' }],
      [95, 'tasks/list', {}],
    ];
    for (const [id, method, params] of cases) {
      const a = await post('/mcp', token, msg(id, method, params), heads(method, typeof params['uri'] === 'string' ? params['uri'] : undefined));
      expect({ method, status: a.status }).toEqual({ method, status: 404 });
      expect(a.json).toMatchObject({ id, error: { code: -32601, data: { reason: 'method_not_found' } } });
    }
    expect(up.bytes).toBe(0);
    legacy.reset();
    const old = await post('/other-mcp', await idp.token(AUD_OTHER), { jsonrpc: '2.0', id: 96, method: 'ping' }, { 'mcp-protocol-version': '2025-11-25' });
    expect(old.json.error?.code).not.toBe(-32601);
    expect(legacy.received.length).toBe(1); // judged as 2025's ping (housekeeping) and forwarded
  });
});
