import { beforeEach, describe, expect, it } from 'vitest';
import { AUD } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { sendExact, type Reply } from '../helpers/wire.ts';

// Review finding: foldUri (policy/names.ts) normalises by RFC 3986, but the MCP SDK's McpServer looks a
// resource up by `new URL(params.uri).toString()` (WHATWG URL). WHATWG turns `file:/etc/shadow`,
// `file:etc/shadow` and `file://localhost/etc/shadow` into `file:///etc/shadow`, drops a default port
// and reads `http:host/x` as `http://host/x`: URIs a `resource: file:///etc/` deny never meets.
// Upstream: the real SDK server (TestUpstream /mcp registers file:///etc/shadow, text "root:x").
const fx = useGatewayFixture({
  overrides: (url) => ({
    mcp: { target: `${url}/mcp`, default: 'allow', rules: [{ method: 'resources/read', resource: 'file:///etc/', deny: true }] },
  }),
});
beforeEach(() => fx.upstream.reset());

async function read(uri: string): Promise<Reply> {
  const token = await fx.idp.token(AUD);
  return sendExact(fx.port, 'POST', '/mcp', [
    ['Authorization', `Bearer ${token}`], ['Accept', 'application/json, text/event-stream'], ['Content-Type', 'application/json'],
  ], JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri } }));
}

describe('a resource deny holds for every spelling the SDK upstream resolves to the denied URI', () => {
  it('control: file:///etc/shadow itself is refused', async () => {
    const reply = await read('file:///etc/shadow');
    expect(reply.status).toBe(403);
    expect(fx.upstream.bytes).toBe(0);
  });

  it.each(['file:/etc/shadow', 'file:etc/shadow', 'file://localhost/etc/shadow', 'file://LOCALHOST/etc/shadow'])(
    'resources/read of %s (WHATWG URL: file:///etc/shadow) is refused, the upstream receives nothing and the secret never leaves',
    async (uri) => {
      const reply = await read(uri);
      expect(reply.text).not.toContain('root:x');
      expect([400, 403]).toContain(reply.status);
      expect(fx.upstream.bytes).toBe(0);
    },
  );
});
