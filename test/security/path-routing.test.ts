import { describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { AUD, PUBLIC_URL } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { RPC } from '../helpers/rpc.ts';
import { sendExact, type Reply } from '../helpers/wire.ts';

// Two upstreams: /mcp → <upstream>/echo and /other-mcp → <upstream>/echo/other. Every token here is
// valid for /mcp only; no path spelling may carry it to the other upstream. The gateway refuses paths
// it would have to normalise (400) rather than normalising them, so the path the policy saw is byte for
// byte the path the upstream receives.

const fx = useGatewayFixture();

const send = (method: string, path: string, headers: readonly (readonly [string, string])[], body?: string): Promise<Reply> => sendExact(fx.port, method, path, headers, body);

async function postWithToken(path: string): Promise<Reply> {
  const token = await fx.idp.token(AUD);
  return send('POST', path, [['Authorization', `Bearer ${token}`], ['Content-Type', 'application/json']], RPC);
}

/** Raw bytes (for what Node's client refuses to send); the status of the first answer. */
function rawStatus(payload: Buffer | string, maxMs = 3_000): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(fx.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(hard);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    };
    const hard = setTimeout(finish, maxMs);
    socket.on('connect', () => socket.write(payload));
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      // One answer is all these cases need; do not wait for a keep-alive timeout.
      if (Buffer.concat(chunks).includes('\r\n\r\n')) setTimeout(finish, 50);
    });
    socket.on('end', finish);
    socket.on('close', finish);
    socket.on('error', (err) => (chunks.length > 0 ? finish() : reject(err)));
  });
}

function expectNothingUpstream(): void {
  expect(fx.upstream.received.filter((r) => r.url.startsWith('/echo/other'))).toEqual([]);
  expect(fx.upstream.received).toEqual([]);
  expect(fx.upstream.bytes).toBe(0);
}

/** 400 path_invalid: decided before any route, so no challenge, and nothing forwarded anywhere. */
async function expectPathRefused(path: string): Promise<void> {
  fx.upstream.reset();
  const reply = await postWithToken(path);
  expect({ path, status: reply.status }).toEqual({ path, status: 400 });
  expect(reply.headers['www-authenticate']).toBeUndefined();
  expect(JSON.parse(reply.text)).toEqual({ error: 'invalid_request', error_description: 'invalid request path', reason: 'path_invalid' });
  expectNothingUpstream();
}

describe('path routing', () => {
  it('SC-116 refuses double slashes anywhere in the path, so //other-mcp cannot be read as another route or an authority', async () => {
    for (const path of ['//mcp', '/mcp//', '//other-mcp', '///other-mcp/mcp', '/mcp//other-mcp', '/mcp//../other-mcp']) await expectPathRefused(path);
  });

  it('SC-117 refuses dot segments rather than normalising them; plain sub-paths reach the named upstream unchanged', async () => {
    for (const path of ['/mcp/../other-mcp', '/mcp/./../other-mcp', '/other-mcp/../mcp', '/mcp/.', '/mcp/..', '/mcp/./x']) await expectPathRefused(path);
    // Positive control: the path the router matched is the path the upstream receives.
    fx.upstream.reset();
    const reply = await postWithToken('/mcp/sub/tools');
    expect(reply.status).toBe(200);
    expect(fx.upstream.received.map((r) => r.url)).toEqual(['/echo/sub/tools']);
    // And a token for /mcp is refused at /other-mcp itself (audience), before anything is forwarded.
    fx.upstream.reset();
    const other = await postWithToken('/other-mcp');
    expect(other.status).toBe(401);
    expect(JSON.parse(other.text)).toMatchObject({ reason: 'aud_mismatch' });
    expectNothingUpstream();
  });

  it('SC-117 forwards no client header that would make the upstream act on another path (X-Original-URL, X-Rewrite-URL, …)', async () => {
    // IIS, Symfony, Laminas and some proxies route on these instead of the request line: forwarded, they
    // would let a request the gateway routed and authorized as /mcp run as /echo/other upstream.
    const overrides = ['X-Original-URL', 'X-Rewrite-URL', 'X-Override-URL', 'X-Original-URI', 'X-Forwarded-Path', 'X-Forwarded-Prefix'];
    const token = await fx.idp.token(AUD);
    fx.upstream.reset();
    const reply = await send('POST', '/mcp', [['Authorization', `Bearer ${token}`], ['Content-Type', 'application/json'], ...overrides.map((h) => [h, '/echo/other'] as const)], RPC);
    expect(reply.status).toBe(200);
    expect(fx.upstream.received.map((r) => r.url)).toEqual(['/echo']);
    const received = fx.upstream.received[0];
    for (const h of overrides) expect({ h, present: received?.headers.has(h.toLowerCase()) }).toEqual({ h, present: false });
    expect(received?.rawHeaders.join('\n')).not.toContain('/echo/other');
  });

  it('SC-118 refuses percent-encoded dot segments', async () => {
    for (const path of ['/mcp/%2e%2e/other-mcp', '/mcp/.%2e/other-mcp', '/mcp/%2E%2E%2Fother-mcp', '/mcp/%2e/x', '/mcp%2e%2e']) await expectPathRefused(path);
  });

  it('SC-119 refuses encoded slashes and backslashes, encoded or raw', async () => {
    for (const path of ['/mcp%2F..%2Fother-mcp', '/mcp%2fadmin', '/mcp%5C..%5Cother-mcp', '/mcp\\..\\other-mcp', '/mcp/..\\other-mcp', '/mcp%252F..%252Fother-mcp']) await expectPathRefused(path);
  });

  it('SC-121 refuses overlong UTF-8, NUL and raw non-ASCII bytes in the path', async () => {
    for (const path of ['/mcp/%c0%ae%c0%ae/other-mcp', '/mcp%00', '/mcp%00/../other-mcp', '/mcp/%e0%80%ae', '/mcp/%ff']) await expectPathRefused(path);
    // Unencoded bytes (and a raw NUL) are written on the socket: Node's client will not send them.
    const token = await fx.idp.token(AUD);
    for (const target of [Buffer.from('/mcp/\xc0\xae\xc0\xae/other-mcp', 'latin1'), Buffer.from('/mcp\x00/../other-mcp', 'latin1')]) {
      fx.upstream.reset();
      const reply = await rawStatus(Buffer.concat([
        Buffer.from('POST '), target,
        Buffer.from(` HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(RPC)}\r\n\r\n${RPC}`),
      ]));
      expect(reply.status).toBe(400);
      expectNothingUpstream();
    }
  });

  it('SC-124 refuses matrix parameters (;) instead of letting a Tomcat-style upstream strip them', async () => {
    for (const path of ['/mcp;x=y', '/mcp;/../other-mcp', '/other-mcp;/mcp', '/mcp/;jsessionid=1', '/mcp%3Bx=y']) await expectPathRefused(path);
  });

  it('SC-125 routes case-sensitively: /MCP and /Mcp are unknown (404), never /mcp', async () => {
    for (const path of ['/MCP', '/Mcp', '/mCp/sub', '/OTHER-MCP']) {
      fx.upstream.reset();
      const reply = await postWithToken(path);
      expect({ path, status: reply.status }).toEqual({ path, status: 404 });
      expect(reply.headers['www-authenticate']).toBeUndefined();
      expect(JSON.parse(reply.text)).toEqual({ error: 'not_found', error_description: 'not found', reason: 'route_unknown' });
      expectNothingUpstream();
    }
  });

  it('SC-127 refuses CONNECT (also to the upstream’s own port), TRACE, an upgrade and a method with a NUL', async () => {
    const token = await fx.idp.token(AUD);
    const upstreamPort = new URL(fx.upstream.url).port;
    for (const [request, status] of [
      ['CONNECT gw.test:443 HTTP/1.1\r\nHost: gw.test:443\r\n\r\n', 405],
      [`CONNECT 127.0.0.1:${upstreamPort} HTTP/1.1\r\nHost: 127.0.0.1:${upstreamPort}\r\nAuthorization: Bearer ${token}\r\n\r\n`, 405],
      [`TRACE /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${token}\r\n\r\n`, 405],
      [`GET /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`, 400],
      ['GET\x00 /mcp HTTP/1.1\r\nHost: gw.test\r\n\r\n', 400],
    ] as const) {
      fx.upstream.reset();
      const reply = await rawStatus(request);
      expect({ request: request.split('\r\n')[0], status: reply.status }).toEqual({ request: request.split('\r\n')[0], status });
      expectNothingUpstream();
    }
    // TRACE reaches the pipeline: it says which methods exist, and why it refused.
    fx.upstream.reset();
    const trace = await send('TRACE', '/mcp', [['Authorization', `Bearer ${token}`]]);
    expect(trace.status).toBe(405);
    expect(trace.headers['allow']).toBe('GET, POST, DELETE, OPTIONS');
    expect(JSON.parse(trace.text)).toMatchObject({ reason: 'method_not_allowed' });
    expectNothingUpstream();
  });

  it('SC-127 forwards no method-override header: the upstream acts on the method the gateway allowed', async () => {
    const overrides = ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override'];
    const token = await fx.idp.token(AUD);
    fx.upstream.reset();
    const reply = await send('POST', '/mcp', [['Authorization', `Bearer ${token}`], ['Content-Type', 'application/json'], ...overrides.map((h) => [h, 'TRACE'] as const)], RPC);
    expect(reply.status).toBe(200);
    expect(fx.upstream.received.map((r) => r.method)).toEqual(['POST']);
    for (const h of overrides) expect({ h, present: fx.upstream.received[0]?.headers.has(h.toLowerCase()) }).toEqual({ h, present: false });
  });

  it('SC-128 answers CORS preflights itself: a foreign origin gets 403, an allowed one its own origin (never *), nothing forwarded', async () => {
    const preflight = (origin: string): Promise<Reply> => send('OPTIONS', '/mcp', [
      ['Origin', origin], ['Access-Control-Request-Method', 'POST'], ['Access-Control-Request-Headers', 'authorization, content-type'],
    ]);
    fx.upstream.reset();
    const evil = await preflight('https://evil.test');
    expect(evil.status).toBe(403);
    expect(JSON.parse(evil.text)).toMatchObject({ reason: 'origin_forbidden' });
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
    expect(evil.headers['access-control-allow-credentials']).toBeUndefined();
    expectNothingUpstream();

    fx.upstream.reset();
    const own = await preflight(PUBLIC_URL);
    expect(own.status).toBe(204);
    expect(own.headers['access-control-allow-origin']).toBe(PUBLIC_URL);
    expect(own.headers['vary']).toBe('Origin, Access-Control-Request-Headers');
    expect(own.headers['access-control-allow-credentials']).toBeUndefined();
    expectNothingUpstream();

    // A real request from the foreign origin, with a valid token, is refused the same way (DNS rebinding).
    fx.upstream.reset();
    const token = await fx.idp.token(AUD);
    const post = await send('POST', '/mcp', [['Origin', 'https://evil.test'], ['Authorization', `Bearer ${token}`], ['Content-Type', 'application/json']], RPC);
    expect(post.status).toBe(403);
    expect(post.headers['access-control-allow-origin']).toBeUndefined();
    expectNothingUpstream();
  });
});
