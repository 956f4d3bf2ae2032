import { describe, expect, it } from 'vitest';
import { AUD, PUBLIC_URL } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { MCP_POST_HEADERS, RPC } from '../helpers/rpc.ts';
import { sendExact, type Reply } from '../helpers/wire.ts';

// A browser MCP client of the 2026-07-28 era sends Mcp-Method, Mcp-Name and one Mcp-Param-{Name}
// per x-mcp-header parameter; each is a non-safelisted request header, so the browser asks first
// (Fetch §3.2.2 preflight) and sends nothing unless every name is in Access-Control-Allow-Headers.
// A wildcard there does not work for Authorization, so the gateway echoes the Mcp-Param-* names
// that are valid RFC 9110 tokens and leaves every other unknown name out.

const fx = useGatewayFixture();

function preflight(requestHeaders: string, origin = PUBLIC_URL): Promise<Reply> {
  return sendExact(fx.port, 'OPTIONS', '/mcp', [['Origin', origin], ['Access-Control-Request-Method', 'POST'], ['Access-Control-Request-Headers', requestHeaders]]);
}

const list = (value: string | string[] | undefined): string[] => String(value ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');

function expectNothingUpstream(): void {
  expect(fx.upstream.received).toEqual([]);
  expect(fx.upstream.bytes).toBe(0);
}

describe('CORS for browser clients of both MCP eras', () => {
  it('allows Mcp-Method, Mcp-Name and the requested Mcp-Param-* names in the preflight, for the own origin only, nothing forwarded', async () => {
    fx.upstream.reset();
    const reply = await preflight('authorization, content-type, mcp-method, mcp-name, mcp-param-region, mcp-param-x.tenant_id, mcp-protocol-version');
    expect(reply.status).toBe(204);
    expect(reply.headers['access-control-allow-origin']).toBe(PUBLIC_URL);
    expect(reply.headers['access-control-allow-credentials']).toBeUndefined();
    const allowed = list(reply.headers['access-control-allow-headers']);
    expect(allowed).toEqual(expect.arrayContaining(['authorization', 'dpop', 'content-type', 'mcp-protocol-version', 'mcp-method', 'mcp-name', 'mcp-param-region', 'mcp-param-x.tenant_id']));
    expect(allowed).not.toContain('*');
    expect(list(reply.headers['access-control-allow-methods'])).toEqual(['GET', 'POST', 'DELETE']);
    // The answer depends on the requested headers: a shared cache must key on them.
    expect(list(reply.headers['vary'])).toEqual(['Origin', 'Access-Control-Request-Headers']);
    expectNothingUpstream();
  });

  it('leaves out requested names that are not Mcp-Param-* tokens or not gateway headers, and bounds the echo', async () => {
    fx.upstream.reset();
    const junk = ['mcp-param-', 'mcp-param-a"b', 'mcp-param-a/b', 'mcp-param-(x)', 'x-mcp-identity', 'cookie', 'x-forwarded-for', `mcp-param-${'a'.repeat(200)}`];
    const allowed = list((await preflight(['mcp-method', ...junk, 'MCP-Param-Region'].join(', '))).headers['access-control-allow-headers']);
    for (const name of junk) expect({ name, allowed: allowed.includes(name) }).toEqual({ name, allowed: false });
    // Browsers send the names lower-cased; one that is not is echoed in the form the browser compares.
    expect(allowed).toContain('mcp-param-region');
    expect(allowed.filter((n) => n.startsWith('mcp-param-'))).toEqual(['mcp-param-region']);

    const many = Array.from({ length: 200 }, (_, i) => `mcp-param-p${i}`);
    const echoed = list((await preflight(many.join(','))).headers['access-control-allow-headers']).filter((n) => n.startsWith('mcp-param-'));
    expect(echoed).toEqual(many.slice(0, 64));
    expectNothingUpstream();
  });

  it('a foreign origin gets 403 to the same preflight and no CORS header at all', async () => {
    fx.upstream.reset();
    const reply = await preflight('mcp-method, mcp-param-region', 'https://evil.test');
    expect(reply.status).toBe(403);
    expect(JSON.parse(reply.text)).toMatchObject({ reason: 'origin_forbidden' });
    expect(Object.keys(reply.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
    expectNothingUpstream();
  });

  it('exposes what a browser client must read: the challenge on a 401 and the session id on an answer', async () => {
    fx.upstream.reset();
    const refused = await sendExact(fx.port, 'POST', '/mcp', [['Origin', PUBLIC_URL], ...Object.entries(MCP_POST_HEADERS)], RPC);
    expect(refused.status).toBe(401);
    expect(refused.headers['www-authenticate']).toMatch(/^Bearer resource_metadata=/);
    expect(refused.headers['access-control-allow-origin']).toBe(PUBLIC_URL);
    const exposed = list(refused.headers['access-control-expose-headers']);
    expect(exposed).toEqual(expect.arrayContaining(['www-authenticate', 'dpop-nonce', 'retry-after', 'mcp-session-id', 'x-request-id']));
    expectNothingUpstream();

    const token = await fx.idp.token(AUD);
    const init = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"browser","version":"1"}}}';
    const ok = await sendExact(fx.port, 'POST', '/mcp', [['Origin', PUBLIC_URL], ['Authorization', `Bearer ${token}`], ...Object.entries(MCP_POST_HEADERS)], init);
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe(PUBLIC_URL);
    expect(list(ok.headers['access-control-expose-headers'])).toEqual(exposed);
    expect(fx.upstream.received).toHaveLength(1);
  });
});
