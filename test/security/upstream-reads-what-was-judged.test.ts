import { beforeEach, describe, expect, it } from 'vitest';
import { AUD, PUBLIC_URL } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { rawExchange, sendExact } from '../helpers/wire.ts';
import { RPC } from '../helpers/rpc.ts';
import { loadConfig } from '../../src/config/compile.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

// Issue 15, points 3, 5 and 6: framing and headers the upstream could read differently from the
// gateway are refused, and the upstream receives only headers on an allow-list.

const fx = useGatewayFixture({ overrides: () => ({ other: { forwardHeaders: ['X-Tenant', 'baggage'] } }) });
beforeEach(() => fx.upstream.reset());

const raw = (payload: string): ReturnType<typeof rawExchange> => rawExchange(fx.port, payload, 3_000);
const AUD_OTHER = `${PUBLIC_URL}/other-mcp`;
const post = (token: string, path = '/mcp'): string =>
  `POST ${path} HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(RPC)}\r\n\r\n${RPC}`;

function expectNothingAtUpstream(): void {
  expect(fx.upstream.received).toHaveLength(0);
  expect(fx.upstream.bytes).toBe(0);
}

describe('GET and DELETE carry no body (point 3)', () => {
  it.each([
    ['GET', 'Content-Length: 2\r\n\r\n{}'],
    ['DELETE', 'Content-Length: 2\r\n\r\n{}'],
    ['GET', 'Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n'],
    ['DELETE', 'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ])('SC-189 refuses %s with a body (%j): 400 body_not_allowed, connection closed, nothing forwarded', async (method, rest) => {
    const token = await fx.idp.token(AUD);
    const reply = await raw(`${method} /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\n${rest}`);
    expect(reply.statuses).toEqual([400]);
    expect(reply.text).toContain('"reason":"body_not_allowed"');
    expect(reply.text).toMatch(/\r\nconnection: close\r\n/i);
    expect(reply.closedByServer).toBe(true);
    expectNothingAtUpstream();
  });

  it('SC-189 still forwards GET and DELETE with Content-Length: 0', async () => {
    const token = await fx.idp.token(AUD);
    const reply = await sendExact(fx.port, 'DELETE', '/mcp', [['Authorization', `Bearer ${token}`], ['Content-Length', '0']]);
    expect(reply.status).toBe(200);
    expect(fx.upstream.received).toHaveLength(1);
    expect(fx.upstream.received[0]?.method).toBe('DELETE');
  });
});

describe('HTTP framing (point 5)', () => {
  it('SC-189 serves nothing after a response that closed the connection: a pipelined request behind a refused one never reaches the upstream', async () => {
    const token = await fx.idp.token(AUD);
    // The first request is refused before its body is read (bad token), so its answer says close.
    const first = `POST /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer not.a.token\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(RPC)}\r\n\r\n${RPC}`;
    const reply = await raw(first + post(token));
    expect(reply.statuses).toEqual([401]);
    expect(reply.text).toMatch(/\r\nconnection: close\r\n/i);
    expect(reply.closedByServer).toBe(true);
    expectNothingAtUpstream();
  });

  it('SC-189 serves nothing after a request that asked for Connection: close (RFC 9112 §9.6)', async () => {
    const token = await fx.idp.token(AUD);
    const closing = post(token).replace('Content-Type:', 'Connection: close\r\nContent-Type:');
    const reply = await raw(closing + post(await fx.idp.token(AUD_OTHER), '/other-mcp'));
    // Node's parser itself refuses bytes after a request that asked for close; either way the second
    // request is never judged, let alone forwarded, and at most one answer leaves.
    expect(reply.statuses.length).toBeLessThanOrEqual(1);
    expect(reply.closedByServer).toBe(true);
    expect(fx.upstream.received.some((r) => r.url === '/echo/other')).toBe(false);
  });

  it('SC-189 answers pipelined requests in order, one at a time, when nothing closes the connection', async () => {
    const token = await fx.idp.token(AUD);
    const last = post(token).replace('Content-Type:', 'Connection: close\r\nContent-Type:');
    const reply = await raw(post(token) + post(await fx.idp.token(AUD_OTHER), '/other-mcp') + last);
    expect(reply.statuses).toEqual([200, 200, 200]);
    expect(reply.closedByServer).toBe(true);
    expect(fx.upstream.received.map((r) => r.url)).toEqual(['/echo', '/echo/other', '/echo']);
  });

  it.each([
    'Transfer-Encoding: gzip, chunked',
    'Transfer-Encoding: deflate, chunked',
  ])('SC-189 refuses %s: 400 transfer_coding_unsupported, nothing forwarded', async (te) => {
    const token = await fx.idp.token(AUD);
    const reply = await raw(`POST /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\n${te}\r\n\r\n${Buffer.byteLength(RPC).toString(16)}\r\n${RPC}\r\n0\r\n\r\n`);
    expect(reply.statuses).toEqual([400]);
    expect(reply.text).toContain('"reason":"transfer_coding_unsupported"');
    expectNothingAtUpstream();
  });

  it('SC-189 refuses a request line without an HTTP version (HTTP/0.9)', async () => {
    const reply = await raw('GET /mcp\r\n\r\n');
    expect(reply.statuses).toEqual([400]);
    expect(reply.text).toContain('"reason":"http_version_unsupported"');
    expectNothingAtUpstream();
  });

  it.each([
    ['Content-Type', 'application/json'],
    ['content-type', 'text/plain'],
    ['MCP-Protocol-Version', '2025-06-18'],
    ['Mcp-Method', 'tools/list'],
    ['Mcp-Name', 'whoami'],
    ['Last-Event-ID', 'e1'],
  ])('SC-189 refuses a repeated singleton header %s: 400 header_duplicate, nothing forwarded', async (name, value) => {
    const token = await fx.idp.token(AUD);
    const reply = await raw(post(token).replace('Content-Type: application/json\r\n', `Content-Type: application/json\r\nMCP-Protocol-Version: 2025-06-18\r\nMcp-Method: tools/list\r\nMcp-Name: whoami\r\nLast-Event-ID: e0\r\n${name}: ${value}\r\n`));
    expect(reply.statuses).toEqual([400]);
    expect(reply.text).toContain('"reason":"header_duplicate"');
    expectNothingAtUpstream();
  });
});

describe('request headers reach the upstream by allow-list (point 6)', () => {
  const IMPERSONATION = [
    ['Impersonate-User', 'admin'], ['Impersonate-Group', 'system:masters'], ['X-Amzn-Oidc-Identity', 'admin'],
    ['X-Amzn-Oidc-Data', 'e30.e30.x'], ['X-Goog-Authenticated-User-Email', 'accounts.google.com:admin@corp'],
    ['Cf-Access-Jwt-Assertion', 'e30.e30.x'], ['Cf-Access-Authenticated-User-Email', 'admin@corp'],
    ['X-Pomerium-Jwt-Assertion', 'e30.e30.x'], ['True-Client-IP', '10.0.0.1'], ['X-Host', 'admin.internal'],
    ['X-Envoy-Original-Path', '/admin'], ['X-Anything-Else', 'x'], ['X-Tenant', 'acme'], ['Cache-Control', 'no-cache'],
  ] as const;

  it('SC-190 drops every header not on the list, keeps content negotiation, MCP and trace headers, and adds its own', async () => {
    const token = await fx.idp.token(AUD);
    const reply = await sendExact(fx.port, 'POST', '/mcp', [
      ['Authorization', `Bearer ${token}`], ['Content-Type', 'application/json'], ['Accept', 'application/json, text/event-stream'],
      ['User-Agent', 'probe/1'], ['Traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'], ['Tracestate', 'a=1'],
      ['MCP-Protocol-Version', '2025-06-18'], ...IMPERSONATION,
    ], RPC);
    expect(reply.status).toBe(200);
    const seen = fx.upstream.received[0]?.headers;
    for (const [name] of IMPERSONATION) expect(seen?.has(name.toLowerCase()), name).toBe(false);
    expect(seen?.get('accept')).toEqual(['application/json, text/event-stream']);
    expect(seen?.get('user-agent')).toEqual(['probe/1']);
    expect(seen?.get('traceparent')).toEqual(['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01']);
    expect(seen?.get('tracestate')).toEqual(['a=1']);
    expect(seen?.get('mcp-protocol-version')).toEqual(['2025-06-18']);
    expect(seen?.get('x-mcp-identity')).toHaveLength(1);
    expect(seen?.get('x-forwarded-host')).toEqual([new URL(PUBLIC_URL).host]);
    expect(seen?.has('authorization')).toBe(false);
  });

  it("SC-190 forwards an upstream's configured extra header to that upstream only", async () => {
    const token = await fx.idp.token(AUD_OTHER);
    const reply = await sendExact(fx.port, 'POST', '/other-mcp', [['Authorization', `Bearer ${token}`], ['Content-Type', 'application/json'], ['X-Tenant', 'acme']], RPC);
    expect(reply.status).toBe(200);
    expect(fx.upstream.received[0]?.headers.get('x-tenant')).toEqual(['acme']);
  });

  // Attack: W3C Baggage went upstream unvalidated (any size, any bytes the parser let through, members
  // an upstream may read as tenant or user facts). It is now dropped unless the upstream lists it.
  it('drops a client\'s baggage header unless the upstream lists baggage in forwardHeaders', async () => {
    const baggage = 'userId=admin,tenant=acme;prop=1';
    const first = await sendExact(fx.port, 'POST', '/mcp', [['Authorization', `Bearer ${await fx.idp.token(AUD)}`], ['Content-Type', 'application/json'], ['Baggage', baggage]], RPC);
    expect(first.status).toBe(200);
    expect(fx.upstream.received[0]?.headers.has('baggage')).toBe(false);
    const listed = await sendExact(fx.port, 'POST', '/other-mcp', [['Authorization', `Bearer ${await fx.idp.token(AUD_OTHER)}`], ['Content-Type', 'application/json'], ['Baggage', baggage]], RPC);
    expect(listed.status).toBe(200);
    expect(fx.upstream.received[1]?.headers.get('baggage')).toEqual([baggage]);
  });

  it('SC-190 refuses a config whose forwardHeaders names a credential, identity, framing or routing header, or an underscore', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-fwd-'));
    try {
      const file = join(dir, 'config.yaml');
      const names = ['Authorization', 'Cookie', 'X-MCP-Identity', 'X-Forwarded-For', 'Transfer-Encoding', 'X-Original-URL', 'Impersonate-User', 'X_Tenant', 'Mcp-Session-Id'];
      writeFileSync(file, stringify({
        publicUrl: PUBLIC_URL,
        issuers: [{ name: 'idp', issuer: 'https://idp.test', jwksUri: 'https://idp.test/jwks', algorithms: ['ES256'] }],
        upstreams: [{ name: 'mcp', path: '/mcp', target: 'http://127.0.0.1:9/mcp', issuers: ['idp'], forwardHeaders: names }],
        identity: { signingKeyFile: join(dir, 'gw.jwk') },
      }));
      let error: unknown;
      try {
        loadConfig(file);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      const keys = (error as ConfigError).problems.map((p) => p.key);
      expect(keys).toEqual(names.map((_n, i) => `upstreams.0.forwardHeaders.${i}`));
      expect((error as ConfigError).problems.every((p) => typeof p.line === 'number')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('credentials in the query string (point 6)', () => {
  it.each(['access_token', 'ACCESS_TOKEN', 'Access_Token', 'id_token', 'refresh_token', 'api_key', 'client_secret'])(
    'SC-184 refuses ?%s=… beside a header token with 400 credentials_conflict; nothing forwarded', async (name) => {
      const token = await fx.idp.token(AUD);
      const reply = await sendExact(fx.port, 'POST', `/mcp?${name}=${token}`, [['Authorization', `Bearer ${token}`], ['Content-Type', 'application/json']], RPC);
      expect(reply.status).toBe(400);
      expect(JSON.parse(reply.text)).toMatchObject({ reason: 'credentials_conflict' });
      expectNothingAtUpstream();
    },
  );
});
