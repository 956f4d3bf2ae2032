import { beforeEach, describe, expect, it } from 'vitest';
import { AUD } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { sendExact } from '../helpers/wire.ts';
import { RPC } from '../helpers/rpc.ts';

// Review findings (low). 1: bearer.ts reads the query with URLSearchParams, which splits on `&` only;
// parsers that also split on `;` (Python's parse_qs before 3.9.2 / with separator=';', Go before 1.17,
// Rack, many PHP setups) read `access_token` from `?x=1;access_token=…`, and the gateway forwards it.
// 2: a client's Connection header can name Content-Type or MCP-Protocol-Version, and
// upstreamRequestHeaders drops them, so the upstream receives a body with no Content-Type (README
// promises it exactly once) and assumes another protocol version than the one the gateway judged.
const fx = useGatewayFixture();
beforeEach(() => fx.upstream.reset());

const headers = async (): Promise<[string, string][]> => [
  ['Authorization', `Bearer ${await fx.idp.token(AUD)}`], ['Accept', 'application/json, text/event-stream'], ['Content-Type', 'application/json'],
];

describe('credential-named query parameters, whatever the separator', () => {
  it.each(['/mcp?x=1;access_token=abc', '/mcp?x=1;Access_Token=abc', '/mcp?;token=abc'])('%s → 400, nothing forwarded', async (target) => {
    const reply = await sendExact(fx.port, 'POST', target, await headers(), RPC);
    expect(reply.status).toBe(400);
    expect(fx.upstream.bytes).toBe(0);
  });
});

describe('Connection cannot strip what the gateway judged and promised', () => {
  it('Connection: Content-Type, MCP-Protocol-Version → refused, or the upstream still gets both exactly as judged', async () => {
    const reply = await sendExact(fx.port, 'POST', '/mcp', [...(await headers()), ['MCP-Protocol-Version', '2025-06-18'], ['Connection', 'keep-alive, Content-Type, MCP-Protocol-Version']], RPC);
    if (reply.status === 400) {
      expect(fx.upstream.bytes).toBe(0);
      return;
    }
    const got = fx.upstream.last()?.headers;
    expect(got?.get('content-type')).toEqual(['application/json']);
    expect(got?.get('mcp-protocol-version')).toEqual(['2025-06-18']);
  });
});
