import { gzipSync } from 'node:zlib';
import { beforeEach, describe, expect, it } from 'vitest';
import { AUD } from '../helpers/gateway.ts';
import { useSdkFixture } from '../helpers/sdk-express.ts';
import { rawExchange } from '../helpers/wire.ts';

// Probe 3, outside attacker: whatever bytes reach the gateway, the MCP SDK's own Express upstream
// (express.json(), last key wins, charset decoding, content codings) never runs a tool the gateway
// refused: delete_file (denied on /mcp) and drop_database (needs mcp:admin, which the token lacks).
// Each case either is refused with no byte upstream, or is forwarded and runs exactly the judged tool.

const fx = useSdkFixture();
beforeEach(() => fx.upstream.reset());

const call = (name: string, args = '{"path":"a"}', id = '1'): string =>
  `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":${JSON.stringify(name)},"arguments":${args}}}`;

interface Case {
  readonly label: string;
  /** Builds the whole request (head and body) given a valid token. */
  readonly wire: (token: string) => string | Buffer;
}

function head(token: string, body: string | Buffer, extra = '', path = '/mcp', ct = 'application/json'): string {
  return `POST ${path} HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${token}\r\nAccept: application/json, text/event-stream\r\nContent-Type: ${ct}\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
}
const simple = (body: string, extra = '', path = '/mcp', ct = 'application/json') => (t: string): string => head(t, body, extra, path, ct) + body;

const deep = (n: number): string => '{"a":'.repeat(n) + '1' + '}'.repeat(n);

const CASES: readonly Case[] = [
  { label: 'control: safe read_file', wire: simple(call('read_file')) },
  { label: 'duplicate name key', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","name":"delete_file","arguments":{"path":"a"}}}') },
  { label: 'duplicate params key', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a"}},"params":{"name":"delete_file"}}') },
  { label: 'escaped duplicate name (\\u006eame)', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","\\u006eame":"delete_file","arguments":{"path":"a"}}}') },
  { label: 'escaped tool name \\u0064elete_file', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\\u0064elete_file","arguments":{}}}') },
  { label: '__proto__ params carrying name', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"__proto__":{"name":"delete_file"},"arguments":{}}}') },
  { label: '__proto__ beside name', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","__proto__":{"name":"delete_file"},"arguments":{"path":"a"}}}') },
  { label: 'constructor/prototype keys', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file","constructor":{"prototype":{"x":1}},"arguments":{}}}') },
  { label: 'top-level __proto__ with method', wire: simple('{"jsonrpc":"2.0","id":1,"__proto__":{"method":"tools/call","params":{"name":"delete_file"}},"method":"ping"}') },
  { label: 'JSON comment', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/call",/*x*/"params":{"name":"delete_file","arguments":{}}}') },
  { label: 'trailing garbage', wire: simple(call('read_file') + 'x') },
  { label: 'trailing second object', wire: simple(call('read_file') + call('delete_file', '{}', '2')) },
  { label: 'trailing whitespace + NUL', wire: simple(call('read_file') + ' \u0000') },
  { label: 'leading whitespace', wire: simple(' \r\n\t' + call('read_file')) },
  { label: 'deep nesting 5000 in arguments', wire: simple(call('read_file', `{"path":"a","x":${deep(5000)}}`)) },
  { label: 'number 1e400 in id', wire: simple(call('read_file', '{"path":"a"}', '1e400')) },
  { label: 'number 1e400 in args', wire: simple(call('read_file', '{"path":"a","n":1e400}')) },
  { label: '-0 id', wire: simple(call('read_file', '{"path":"a"}', '-0')) },
  { label: '\\u0000 in name', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file\\u0000","arguments":{}}}') },
  { label: 'raw NUL byte in name', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file\u0000","arguments":{}}}') },
  { label: 'lone surrogate in name', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file\\ud800","arguments":{}}}') },
  { label: 'NFKC fullwidth name', wire: simple(call('ｄelete_file', '{}')) },
  { label: 'upper-case name', wire: simple(call('DELETE_FILE', '{}')) },
  { label: 'drop_database without admin', wire: simple(call('drop_database', '{}')) },
  { label: 'batch [safe, danger]', wire: simple(`[${call('read_file')},${call('delete_file', '{}', '2')}]`) },
  { label: 'batch [danger]', wire: simple(`[${call('delete_file', '{}')}]`) },
  { label: 'nested batch [[danger]]', wire: simple(`[[${call('delete_file', '{}')}]]`) },
  { label: 'charset=utf-16le', wire: (t) => { const b = Buffer.from(call('delete_file', '{}'), 'utf16le'); return Buffer.concat([Buffer.from(head(t, b, '', '/mcp', 'application/json; charset=utf-16le')), b]); } },
  { label: 'charset=utf-7 (+AGQ-)', wire: simple(call('+AGQ-elete_file', '{}'), '', '/mcp', 'application/json; charset=utf-7') },
  { label: 'charset=latin1', wire: simple(call('read_file'), '', '/mcp', 'application/json; charset=latin1') },
  { label: 'charset="utf-8" quoted', wire: simple(call('read_file'), '', '/mcp', 'application/json; charset="utf-8"') },
  { label: 'charset=utf-8 then charset=utf-7', wire: simple(call('+AGQ-elete_file', '{}'), '', '/mcp', 'application/json; charset=utf-8; charset=utf-7') },
  { label: 'application/json+x / vnd type', wire: simple(call('read_file'), '', '/mcp', 'application/vnd.api+json') },
  { label: 'Content-Type duplicated (json, utf-7)', wire: simple(call('+AGQ-elete_file', '{}'), 'Content-Type: application/json; charset=utf-7\r\n') },
  { label: 'Content-Type comma list', wire: simple(call('+AGQ-elete_file', '{}'), '', '/mcp', 'application/json, application/json; charset=utf-7') },
  { label: 'UTF-8 BOM', wire: simple('\ufeff' + call('read_file')) },
  { label: 'gzip Content-Encoding', wire: (t) => { const b = gzipSync(call('delete_file', '{}')); return Buffer.concat([Buffer.from(head(t, b, 'Content-Encoding: gzip\r\n')), b]); } },
  { label: 'TE chunked + CL', wire: (t) => { const b = call('read_file'); const ch = `${b.length.toString(16)}\r\n${b}\r\n0\r\n\r\n`; return head(t, '', 'Transfer-Encoding: chunked\r\n').replace('Content-Length: 0', `Content-Length: ${ch.length}`) + ch; } },
  { label: 'TE chunked alone (smuggled 2nd in chunk ext)', wire: (t) => { const b = call('read_file'); return `POST /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${t}\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${b.length.toString(16)};x=y\r\n${b}\r\n0\r\n\r\n`; } },
  { label: 'TE: chunked, identity', wire: (t) => { const b = call('read_file'); return `POST /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${t}\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nTransfer-Encoding: identity, chunked\r\n\r\n${b.length.toString(16)}\r\n${b}\r\n0\r\n\r\n`; } },
  { label: 'obs-fold header', wire: simple(call('read_file'), 'X-A: b\r\n  folded\r\n') },
  { label: 'obs-fold on Content-Type', wire: (t) => { const b = call('+AGQ-elete_file', '{}'); return head(t, b, '', '/mcp', 'application/json\r\n ; charset=utf-7') + b; } },
  { label: 'duplicate Authorization', wire: (t) => simple(call('read_file'), `Authorization: Bearer ${t}\r\n`)(t) },
  { label: 'duplicate Mcp-Session-Id', wire: simple(call('read_file'), 'Mcp-Session-Id: a\r\nMcp-Session-Id: b\r\n') },
  { label: 'duplicate Mcp-Protocol-Version', wire: simple(call('read_file'), 'Mcp-Protocol-Version: 2025-06-18\r\nMcp-Protocol-Version: 2025-03-26\r\n') },
  { label: 'Mcp-Method mismatch (2026-07-28)', wire: simple(call('delete_file', '{}'), 'Mcp-Protocol-Version: 2026-07-28\r\nMcp-Method: ping\r\n') },
  { label: 'Mcp-Name safe, body danger (2026)', wire: simple(call('delete_file', '{}'), 'Mcp-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: read_file\r\n') },
  { label: 'Mcp-Name base64 of danger, body safe', wire: simple(call('read_file'), `Mcp-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: =?base64?${Buffer.from('delete_file').toString('base64')}?=\r\n`) },
  { label: 'Mcp-Name base64 of safe, body danger', wire: simple(call('delete_file', '{}'), `Mcp-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: =?base64?${Buffer.from('read_file').toString('base64')}?=\r\n`) },
  { label: 'Mcp-Name duplicated', wire: simple(call('read_file'), 'Mcp-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: read_file\r\nMcp-Name: delete_file\r\n') },
  { label: 'Mcp-Param-Path mismatch', wire: simple(call('read_file'), 'Mcp-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: read_file\r\nMcp-Param-Path: /etc/passwd\r\n') },
  { label: 'query ?name=delete_file', wire: simple(call('read_file'), '', '/mcp?name=delete_file') },
  { label: 'path /mcp/../other-mcp', wire: simple(call('delete_file', '{}'), '', '/other-mcp/../mcp') },
  { label: 'path /mcp/', wire: simple(call('delete_file', '{}'), '', '/mcp/') },
  { label: 'path //mcp', wire: simple(call('delete_file', '{}'), '', '//mcp') },
  { label: 'path /%6dcp', wire: simple(call('delete_file', '{}'), '', '/%6dcp') },
  { label: 'path /other-mcp%2F..%2Fmcp', wire: simple(call('delete_file', '{}'), '', '/other-mcp%2F..%2Fmcp') },
  { label: 'absolute-form target', wire: simple(call('read_file'), '', 'http://evil.test/mcp') },
  { label: 'pipelined: safe then danger', wire: (t) => simple(call('read_file'))(t) + simple(call('delete_file', '{}', '2'))(t) },
  { label: 'pipelined: CL short, danger in tail', wire: (t) => { const inner = simple(call('delete_file', '{}', '2'))(t); const b = call('read_file'); return head(t, b) + b + inner; } },
  { label: 'CL smaller than body (tail = request)', wire: (t) => { const b = call('read_file'); const tail = `POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${call('delete_file', '{}').length}\r\n\r\n${call('delete_file', '{}')}`; return head(t, b) + b + tail; } },
  { label: 'method key case variant "Method"', wire: simple('{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call","params":{"name":"delete_file"}}') },
  { label: 'params as array', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["delete_file"]}') },
  { label: 'name as array', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["delete_file"],"arguments":{}}}') },
  { label: 'method with trailing space', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/call ","params":{"name":"delete_file","arguments":{}}}') },
  { label: 'jsonrpc 1.0 / missing', wire: simple('{"id":1,"method":"tools/call","params":{"name":"delete_file","arguments":{}}}') },
  { label: 'Content-Length with leading zero', wire: (t) => { const b = call('read_file'); return head(t, b).replace(`Content-Length: ${b.length}`, `Content-Length: 0${b.length}`) + b; } },
  { label: 'Content-Length "n, n"', wire: (t) => { const b = call('read_file'); return head(t, b).replace(`Content-Length: ${b.length}`, `Content-Length: ${b.length}, ${b.length}`) + b; } },
  { label: 'Content-Length +n', wire: (t) => { const b = call('read_file'); return head(t, b).replace(`Content-Length: ${b.length}`, `Content-Length: +${b.length}`) + b; } },
  { label: 'space before colon in Content-Type', wire: (t) => { const b = call('+AGQ-elete_file', '{}'); return head(t, b).replace('Content-Type: application/json', 'Content-Type : application/json; charset=utf-7') + b; } },
  { label: 'HTTP/1.0 request', wire: (t) => simple(call('delete_file', '{}'))(t).replace('HTTP/1.1', 'HTTP/1.0') },
  { label: 'Expect: 100-continue', wire: simple(call('delete_file', '{}'), 'Expect: 100-continue\r\n') },
  { label: 'X-HTTP-Method-Override', wire: simple(call('read_file'), 'X-HTTP-Method-Override: DELETE\r\n') },
  { label: 'bare LF line endings', wire: (t) => simple(call('delete_file', '{}'))(t).replace(/\r\n/g, '\n') },
  { label: 'Mcp-Name on 2025-06-18 (ignored era)', wire: simple(call('delete_file', '{}'), 'Mcp-Protocol-Version: 2025-06-18\r\nMcp-Name: read_file\r\n') },
  { label: 'SSE GET with Last-Event-ID', wire: (t) => `GET /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${t}\r\nAccept: text/event-stream\r\nLast-Event-ID: x\r\nLast-Event-ID: y\r\n\r\n` },
  { label: 'arguments __proto__ carrying path', wire: simple(call('read_file', '{"__proto__":{"path":"/etc/passwd"}}')) },
  { label: 'name key with escaped NUL suffix key', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","name\\u0000":"delete_file","arguments":{"path":"a"}}}') },
  { label: 'request with result member too', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file","arguments":{}},"result":{}}') },
  { label: 'request with error member too', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file","arguments":{}},"error":{"code":1,"message":"x"}}') },
  { label: 'notification tools/call (no id)', wire: simple('{"jsonrpc":"2.0","method":"tools/call","params":{"name":"delete_file","arguments":{}}}') },
  { label: 'id null', wire: simple(call('delete_file', '{}', 'null')) },
  { label: 'id object', wire: simple(call('delete_file', '{}', '{"a":1}')) },
  { label: 'batch [response, danger]', wire: simple(`[{"jsonrpc":"2.0","id":9,"result":{}},${call('delete_file', '{}', '2')}]`) },
  { label: 'empty batch', wire: simple('[]') },
  { label: 'name in _meta only', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"name":"delete_file"},"name":"read_file","arguments":{"path":"a"}}}') },
  { label: 'Content-Type application/json; (empty param)', wire: simple(call('read_file'), '', '/mcp', 'application/json;') },
  { label: 'Content-Type upper case, CHARSET=UTF-8', wire: simple(call('read_file'), '', '/mcp', 'APPLICATION/JSON; CHARSET=UTF-8') },
  { label: 'Content-Type text/plain with JSON', wire: simple(call('delete_file', '{}'), '', '/mcp', 'text/plain') },
  { label: 'Content-Type missing', wire: (t) => simple(call('delete_file', '{}'))(t).replace('Content-Type: application/json\r\n', '') },
  { label: 'Content-Type json with tab and utf-7', wire: simple(call('+AGQ-elete_file', '{}'), '', '/mcp', 'application/json;\tcharset=utf-7') },
];

describe('probe 3: the SDK Express upstream runs only what the gateway judged', () => {
  it.each(CASES)('$label', async (c) => {
    const token = await fx.idp.token(AUD);
    const w = c.wire(token);
    const reply = await rawExchange(fx.port, (typeof w === 'string' ? Buffer.from(w, 'utf8') : w).toString('latin1'), 1_000);
    await new Promise((r) => setTimeout(r, 50));
    const reason = /"reason":"([^"]+)"/.exec(reply.text)?.[1] ?? '';
    expect(fx.upstream.ran('delete_file'), c.label).toBe(0);
    expect(fx.upstream.ran('drop_database'), c.label).toBe(0);
    // A lone answer carrying a gateway reason is a refusal: the upstream saw no byte of it.
    if (reply.statuses.length === 1 && reason !== '') expect(fx.upstream.bytes, c.label).toBe(0);
  });
});
