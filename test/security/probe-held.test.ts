import { beforeEach, describe, expect, it } from 'vitest';
import { AUD, AUD_OTHER } from '../helpers/gateway.ts';
import { useSdkFixture } from '../helpers/sdk-express.ts';
import { rawExchange, sendExact, type Reply } from '../helpers/wire.ts';

// Review probes that held: each body below either is refused before any byte reaches the SDK Express
// upstream, or is judged as the upstream reads it; the denied tools never run.
const fx = useSdkFixture();
beforeEach(() => fx.upstream.reset());

async function post(path: string, body: string, extra: [string, string][] = []): Promise<Reply> {
  const token = await fx.idp.token(path === '/mcp' ? AUD : AUD_OTHER);
  return sendExact(fx.port, 'POST', path, [
    ['Authorization', `Bearer ${token}`], ['Accept', 'application/json, text/event-stream'], ['Content-Type', 'application/json'], ...extra,
  ], body);
}

describe('held: JSON and JSON-RPC edge cases never run a denied tool', () => {
  it.each([
    ['/mcp', '{"jsonrpc":"2.0","id":1,"method":"tools\\u002fcall","params":{"name":"delete_file"}}'],
    ['/mcp', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete\\u005ffile"}}'],
    ['/mcp', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","__proto__":{"name":"delete_file"}}}'],
    ['/mcp', '{"jsonrpc":"2.0","id":1,"method":"tools/call","__proto__":{"params":{"name":"delete_file"}},"params":{"name":"read_file","arguments":{"path":"a"}}}'],
    ['/mcp', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","n\\u0061me":"delete_file"}}'],
    ['/mcp', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["delete_file"]}'],
    ['/mcp', '{"jsonrpc":"2.0","id":1e400,"method":"tools/call","params":{"name":"delete_file"}}'],
    ['/mcp', '{"jsonrpc":"2.0","id":-0,"method":"tools/call","params":{"name":"delete_file"}}'],
    ['/mcp', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file\\u0000"}}'],
    ['/mcp', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"Delete_File"}}'],
    ['/mcp', '[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_file"}}]'],
    ['/other-mcp', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a"}},"Method":"x"}'],
    ['/other-mcp', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a"},"argument\u017f":{}}}'],
  ])('%s %s', async (path, body) => {
    const reply = await post(path, body);
    expect(fx.upstream.ran('delete_file')).toBe(0);
    // An own "__proto__" key (JSON.parse never sets a prototype) is forwarded; the upstream reads the same own keys.
    if (body.includes('__proto__')) return;
    expect(reply.status).toBeGreaterThanOrEqual(400);
    expect(fx.upstream.bytes).toBe(0);
  });

  it('chunked trailers never reach the upstream; obs-fold and a space before the colon are refused', async () => {
    const token = await fx.idp.token(AUD);
    const body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"}}';
    await rawExchange(fx.port, `POST /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\nMcp-Name: delete_file\r\n\r\n`);
    expect(fx.upstream.wire).not.toMatch(/mcp-name/i);
    fx.upstream.reset();
    for (const head of ['Content-Type: application/json\r\n ;charset=utf-7', 'Content-Type : application/json']) {
      const r = await rawExchange(fx.port, `POST /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${token}\r\n${head}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      expect(r.status).toBe(400);
    }
    expect(fx.upstream.bytes).toBe(0);
  });
});
