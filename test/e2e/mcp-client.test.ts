import { describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { AUD, AUD_OTHER } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';

const fx = useGatewayFixture({ overrides: (upstreamUrl) => ({ mcp: { target: `${upstreamUrl}/mcp` }, other: { target: `${upstreamUrl}/mcp` } }) });

async function connectClient(path: string, token: string): Promise<Client> {
  const client = new Client({ name: 'e2e', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(fx.gw.url + path), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  return client;
}

describe('an MCP SDK client through the gateway', () => {
  it('calls a tool on upstream A with a token for A; the upstream sees the assertion, never the token', async () => {
    const token = await fx.idp.token(AUD, { sub: 'alice' });
    const client = await connectClient('/mcp', token);
    const tools = await client.listTools();
    expect(tools.tools.map((t) => t.name)).toContain('whoami');
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    const seen = JSON.parse((result.content as { text: string }[])[0]?.text ?? '{}') as { identity: string[]; authorization: string[]; cookie: string[] };
    expect(seen.authorization).toEqual([]);
    expect(seen.identity).toHaveLength(1);
    const assertion = seen.identity[0] as string;
    expect(assertion).not.toContain(token);
    expect(decodeProtectedHeader(assertion).typ).toBe('mcp-identity+jwt');
    const claims = decodeJwt(assertion);
    expect(claims.sub).toBe('alice');
    expect(claims.aud).toBe(AUD);
    await client.close();
    for (const r of fx.upstream.received) expect(r.headers.has('authorization')).toBe(false);
  });

  it('refuses the same token at upstream B (audience) and upstream B receives nothing', async () => {
    const token = await fx.idp.token(AUD, { sub: 'alice' });
    fx.upstream.reset();
    await expect(connectClient('/other-mcp', token)).rejects.toThrow();
    expect(fx.upstream.received).toHaveLength(0);
    expect(fx.upstream.bytes).toBe(0);
    const res = await fetch(fx.gw.url + '/other-mcp', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(
      'Bearer resource_metadata="https://gw.test/.well-known/oauth-protected-resource/other-mcp", error="invalid_token", error_description="the token audience is not this resource", scope="mcp:tools"',
    );
    expect(await res.json()).toEqual({ error: 'invalid_token', error_description: 'the token audience is not this resource', reason: 'aud_mismatch' });
    expect(fx.upstream.bytes).toBe(0);
    // and a token for B works at B
    const tokenB = await fx.idp.token(AUD_OTHER);
    const client = await connectClient('/other-mcp', tokenB);
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    await client.close();
  });
});
