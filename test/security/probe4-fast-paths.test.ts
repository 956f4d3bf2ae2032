import { connect } from 'node:net';
import { beforeEach, describe, expect, it } from 'vitest';
import { AUD } from '../helpers/gateway.ts';
import { useSdkFixture } from '../helpers/sdk-express.ts';
import { parseFirstResponse, rawExchange } from '../helpers/wire.ts';

// Probe 4, outside attacker, aimed at this session's fast paths (Authorization reading, routing,
// body reading, duplicate-key scan, Content-Type fast path, Mcp-Param-* detection). Against the MCP
// SDK's own Express upstream: each case is refused with no byte upstream, or forwarded and runs
// exactly the judged tool; delete_file (denied on /mcp) and drop_database (needs mcp:admin) never run.

const fx = useSdkFixture();
beforeEach(() => fx.upstream.reset());

const call = (name: string, args = '{"path":"a"}', id = '1'): string =>
  `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":${JSON.stringify(name)},"arguments":${args}}}`;

interface Opts {
  readonly auth?: (token: string) => string;
  readonly extra?: string;
  readonly path?: string;
  readonly ct?: string;
}
function head(token: string, body: string, o: Opts = {}): string {
  const auth = o.auth === undefined ? `Authorization: Bearer ${token}\r\n` : o.auth(token);
  return `POST ${o.path ?? '/mcp'} HTTP/1.1\r\nHost: gw.test\r\n${auth}Accept: application/json, text/event-stream\r\nContent-Type: ${o.ct ?? 'application/json'}\r\n${o.extra ?? ''}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
}
/** Body text as UTF-8 bytes, sent as latin1 characters (rawExchange writes latin1). */
const u8 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');
const simple = (body: string, o: Opts = {}) => (t: string): string => u8(head(t, body, o) + body);

/** An object text with n filler keys k0..k(n-1), then the given members. */
const filler = (n: number, prefix = 'k'): string => Array.from({ length: n }, (_, i) => `"${prefix}${i}":${i}`).join(',');
const dangerLast = (n: number): string => `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file",${filler(n)},"arguments":{"path":"a"},"name":"delete_file"}}`;

interface Case {
  readonly label: string;
  readonly wire: (token: string) => string;
  /** The judged tool, when the case must be forwarded and run it (else: refused or harmless). */
  readonly runs?: 'read_file';
}

const safe = call('read_file');
const danger = call('delete_file', '{}');

const CASES: readonly Case[] = [
  { label: 'control: safe read_file', wire: simple(safe), runs: 'read_file' },
  // Authorization header reading
  { label: 'auth: tab after Bearer', wire: simple(danger, { auth: (t) => `Authorization: Bearer\t${t}\r\n` }) },
  { label: 'auth: several spaces', wire: simple(safe, { auth: (t) => `Authorization: Bearer    ${t}\r\n` }) },
  { label: 'auth: no space (Bearer<token>)', wire: simple(safe, { auth: (t) => `Authorization: Bearer${t}\r\n` }) },
  { label: 'auth: lower-case bearer', wire: simple(safe, { auth: (t) => `Authorization: bearer ${t}\r\n` }), runs: 'read_file' },
  { label: 'auth: upper-case BEARER', wire: simple(safe, { auth: (t) => `Authorization: BEARER ${t}\r\n` }), runs: 'read_file' },
  { label: 'auth: dotted capital I in scheme (İ)', wire: simple(safe, { auth: (t) => `Authorization: Bİarer ${t}\r\n` }) },
  { label: 'auth: long s / Kelvin sign in scheme', wire: simple(safe, { auth: (t) => `Authorization: Bearer\u017f ${t}\r\n` }) },
  { label: 'auth: Kelvin sign token prefix', wire: simple(safe, { auth: (t) => `Authorization: Bearer \u212a${t}\r\n` }) },
  { label: 'auth: U+2028 inside token', wire: simple(safe, { auth: (t) => `Authorization: Bearer ${t.slice(0, 10)}\u2028${t.slice(10)}\r\n` }) },
  { label: 'auth: U+2029 after token', wire: simple(safe, { auth: (t) => `Authorization: Bearer ${t}\u2029\r\n` }) },
  { label: 'auth: empty token', wire: simple(safe, { auth: () => 'Authorization: Bearer \r\n' }) },
  { label: 'auth: scheme alone', wire: simple(safe, { auth: () => 'Authorization: Bearer\r\n' }) },
  { label: 'auth: token then second word', wire: simple(safe, { auth: (t) => `Authorization: Bearer ${t} x\r\n` }) },
  { label: 'auth: two Authorization headers', wire: simple(safe, { auth: (t) => `Authorization: Bearer ${t}\r\nauthorization: Bearer ${t}\r\n` }) },
  { label: 'auth: DPoP scheme without proof', wire: simple(safe, { auth: (t) => `Authorization: DPoP ${t}\r\n` }) },
  { label: 'auth: dpop lower case without proof', wire: simple(safe, { auth: (t) => `Authorization: dpop ${t}\r\n` }) },
  { label: 'auth: Basic scheme', wire: simple(safe, { auth: (t) => `Authorization: Basic ${t}\r\n` }) },
  { label: 'auth: very long token (64 KB)', wire: simple(safe, { auth: (t) => `Authorization: Bearer ${t}${'A'.repeat(64 * 1024)}\r\n` }) },
  { label: 'auth: token only in query', wire: (t) => simple(safe, { auth: () => '', path: `/mcp?access_token=${t}` })(t) },
  { label: 'query: ?access_token= beside header', wire: (t) => simple(safe, { path: `/mcp?access_token=${t}` })(t) },
  { label: 'query: ?x=1;access_token=', wire: (t) => simple(safe, { path: `/mcp?x=1;access_token=${t}` })(t) },
  { label: 'query: ;access_token in path', wire: (t) => simple(safe, { path: `/mcp;access_token=${t}` })(t) },
  { label: 'query: ?ACCESS_TOKEN=', wire: (t) => simple(safe, { path: `/mcp?ACCESS_TOKEN=${t}` })(t) },
  { label: 'query: ?access%5Ftoken=', wire: (t) => simple(safe, { path: `/mcp?access%5Ftoken=${t}` })(t) },
  // qs (Express's query parser) reads access_token[]=… and access_token[0]=… as access_token; PHP turns
  // "." and " " in a name into "_" (access.token, access+token → access_token).
  { label: 'query: ?access_token[]=', wire: (t) => simple(safe, { path: `/mcp?access_token[]=${t}` })(t) },
  { label: 'query: ?access_token%5B0%5D=', wire: (t) => simple(safe, { path: `/mcp?access_token%5B0%5D=${t}` })(t) },
  { label: 'query: ?access.token=', wire: (t) => simple(safe, { path: `/mcp?access.token=${t}` })(t) },
  { label: 'query: ?access+token=', wire: (t) => simple(safe, { path: `/mcp?access+token=${t}` })(t) },
  { label: 'query: ?access[token=', wire: (t) => simple(safe, { path: `/mcp?access[token=${t}` })(t) },
  { label: 'query: ?x=1;Token[a]=', wire: (t) => simple(safe, { path: `/mcp?x=1;Token[a]=${t}` })(t) },
  { label: 'query: ?%20access_token=', wire: (t) => simple(safe, { path: `/mcp?%20access_token=${t}` })(t) },
  { label: 'query: harmless ?q=a.b[c] still forwarded', wire: simple(safe, { path: '/mcp?q=a.b[c]&x[y]=1' }), runs: 'read_file' },
  // Routing and admission
  { label: 'route: /mcp/../other-mcp', wire: simple(danger, { path: '/mcp/../other-mcp' }) },
  { label: 'route: /mcp/%2e%2e/mcp', wire: simple(danger, { path: '/mcp/%2e%2e/mcp' }) },
  { label: 'route: /mcp/.', wire: simple(danger, { path: '/mcp/.' }) },
  { label: 'route: /mcp/..', wire: simple(danger, { path: '/mcp/..' }) },
  { label: 'route: /other-mcp/./x', wire: simple(danger, { path: '/other-mcp/./x' }) },
  { label: 'route: //mcp', wire: simple(danger, { path: '//mcp' }) },
  { label: 'route: /mcp//', wire: simple(danger, { path: '/mcp//' }) },
  { label: 'route: /mcp? (empty query)', wire: simple(danger, { path: '/mcp?' }) },
  { label: 'route: /mcp?# ', wire: simple(danger, { path: '/mcp?#' }) },
  { label: 'route: /mcp#x', wire: simple(danger, { path: '/mcp#x' }) },
  { label: 'route: /mcpx', wire: simple(danger, { path: '/mcpx' }) },
  { label: 'route: /mcp%2F', wire: simple(danger, { path: '/mcp%2F' }) },
  { label: 'route: /mcp\\..', wire: simple(danger, { path: '/mcp\\..' }) },
  { label: 'route: absolute-form http://gw.test/mcp', wire: simple(danger, { path: 'http://gw.test/mcp' }) },
  { label: 'route: asterisk-form', wire: simple(danger, { path: '*' }) },
  // Duplicate keys past the 16-key list
  ...[15, 16, 17, 40].map((n): Case => ({ label: `body: duplicate name after ${n} keys`, wire: simple(dangerLast(n)) })),
  { label: 'body: escaped duplicate \\u006eame after 20 keys', wire: simple(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file",${filler(20)},"arguments":{"path":"a"},"\\u006eame":"delete_file"}}`) },
  { label: 'body: duplicate after a large nested object closes', wire: simple(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a",${filler(30, 'a')}},"name":"delete_file"}}`) },
  { label: 'body: duplicate in large outer after large sibling', wire: simple(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{${filler(17)},"name":"read_file","x":{${filler(20, 'x')}},"y":[{${filler(18, 'y')}}],"arguments":{"path":"a"},"name":"delete_file"}}`) },
  { label: 'body: duplicate method at top after 17 keys', wire: simple(`{"jsonrpc":"2.0","id":1,"method":"ping",${filler(17)},"method":"tools/call","params":{"name":"delete_file","arguments":{}}}`) },
  { label: 'body: duplicate params at top after large params', wire: simple(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file",${filler(20)},"arguments":{"path":"a"}},${filler(17, 't')},"params":{"name":"delete_file","arguments":{}}}`) },
  { label: 'body: large keys, folded case duplicate Name', wire: simple(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file",${filler(20)},"arguments":{"path":"a"},"Name":"delete_file"}}`) },
  // Content-Type spellings
  { label: 'ct: application/json;charset=utf-7', wire: simple(call('+AGQ-elete_file', '{}'), { ct: 'application/json;charset=utf-7' }) },
  { label: 'ct: APPLICATION/JSON', wire: simple(safe, { ct: 'APPLICATION/JSON' }), runs: 'read_file' },
  { label: 'ct: application/json ; charset=UTF-8', wire: simple(safe, { ct: 'application/json ; charset=UTF-8' }), runs: 'read_file' },
  { label: 'ct: application/json<TAB>;charset=utf-7', wire: simple(call('+AGQ-elete_file', '{}'), { ct: 'application/json\t;charset=utf-7' }) },
  { label: 'ct: application/jsonx', wire: simple(danger, { ct: 'application/jsonx' }) },
  { label: 'ct: application/json-seq', wire: simple(danger, { ct: 'application/json-seq' }) },
  { label: 'ct: application/json, text/plain', wire: simple(danger, { ct: 'application/json, text/plain' }) },
  { label: 'ct: application/json;charset=utf-8;charset=utf-16le', wire: simple(danger, { ct: 'application/json;charset=utf-8;charset=utf-16le' }) },
  { label: 'ct: application/json; charset="utf-8\\"x"', wire: simple(danger, { ct: 'application/json; charset="utf-8\\"x"' }) },
  // Framing and body reading
  { label: 'chunked body, danger', wire: (t) => { const b = danger; return u8(head(t, '', { extra: 'Transfer-Encoding: chunked\r\n' }).replace('Content-Length: 0\r\n', '') + `${b.length.toString(16)}\r\n${b}\r\n0\r\n\r\n`); } },
  { label: 'chunked body in many chunks, safe', wire: (t) => { const parts = safe.match(/.{1,7}/gs) ?? []; return u8(head(t, '', { extra: 'Transfer-Encoding: chunked\r\n' }).replace('Content-Length: 0\r\n', '') + parts.map((p) => `${p.length.toString(16)}\r\n${p}\r\n`).join('') + '0\r\n\r\n'); }, runs: 'read_file' },
  { label: 'chunked with trailer naming Content-Type', wire: (t) => { const b = call('+AGQ-elete_file', '{}'); return u8(head(t, '', { extra: 'Transfer-Encoding: chunked\r\nTrailer: Content-Type\r\n' }).replace('Content-Length: 0\r\n', '') + `${b.length.toString(16)}\r\n${b}\r\n0\r\nContent-Type: application/json; charset=utf-7\r\n\r\n`); } },
  { label: 'pipelined: safe, danger, safe', wire: (t) => simple(safe)(t) + simple(call('delete_file', '{}', '2'))(t) + simple(call('read_file', '{"path":"b"}', '3'))(t) },
  { label: 'Content-Length larger than body', wire: (t) => u8(head(t, safe).replace(`Content-Length: ${safe.length}`, `Content-Length: ${safe.length + 5}`) + safe) },
  { label: 'Content-Length smaller, danger object tail', wire: (t) => { const b = '{"jsonrpc":"2.0","id":1,"method":"ping"}'; return u8(head(t, b).replace(`Content-Length: ${b.length}`, `Content-Length: ${b.length - 1}`) + b + danger); } },
  { label: 'Expect: 100-continue, safe', wire: simple(safe, { extra: 'Expect: 100-continue\r\n' }) },
  { label: 'Expect: 100-continue, danger', wire: simple(danger, { extra: 'Expect: 100-continue\r\n' }) },
  // Mcp-Param-* and mirror headers
  { label: 'mcp-param-path lower case, mismatched', wire: simple(safe, { extra: 'mcp-param-path: /etc/passwd\r\n' }) },
  { label: 'MCP-PARAM-PATH upper case, mismatched', wire: simple(safe, { extra: 'MCP-PARAM-PATH: /etc/passwd\r\n' }) },
  { label: 'Mcp-Param- with empty suffix', wire: simple(safe, { extra: 'Mcp-Param-: x\r\n' }) },
  { label: 'X-Mcp-Param-Path (other first letter)', wire: simple(safe, { extra: 'X-Mcp-Param-Path: /etc\r\n' }) },
  { label: 'mcp-name lower, danger body, safe header', wire: simple(danger, { extra: 'Mcp-Protocol-Version: 2026-07-28\r\nmcp-method: tools/call\r\nmcp-name: read_file\r\n' }) },
  { label: 'MCP-NAME twice with different case', wire: simple(safe, { extra: 'Mcp-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMCP-NAME: read_file\r\nmcp-name: delete_file\r\n' }) },
  // Names and methods
  { label: 'name: trailing space', wire: simple(call('delete_file ', '{}')) },
  { label: 'name: leading NBSP', wire: simple(call('\u00a0delete_file', '{}')) },
  { label: 'name: trailing ideographic space', wire: simple(call('delete_file\u3000', '{}')) },
  { label: 'name: Cyrillic е confusable', wire: simple(call('d\u0435lete_file', '{}')) },
  { label: 'name: zero-width joiner', wire: simple(call('delete\u200d_file', '{}')) },
  { label: 'name: DEL char', wire: simple(call('delete_file\u007f', '{}')) },
  { label: 'name: Kelvin sign in drop_database? (dro\u212a)', wire: simple(call('drop_databas\u212a', '{}')) },
  { label: 'name: long s in drop_databaſe', wire: simple(call('drop_databa\u017fe', '{}')) },
  { label: 'name: upper-case DROP_DATABASE', wire: simple(call('DROP_DATABASE', '{}')) },
  { label: 'method: Tools/call', wire: simple('{"jsonrpc":"2.0","id":1,"method":"Tools/call","params":{"name":"delete_file","arguments":{}}}') },
  { label: 'method: tools/Call', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools/Call","params":{"name":"delete_file","arguments":{}}}') },
  { label: 'method: TOOLS/CALL', wire: simple('{"jsonrpc":"2.0","id":1,"method":"TOOLS/CALL","params":{"name":"delete_file","arguments":{}}}') },
  { label: 'method: tools_call', wire: simple('{"jsonrpc":"2.0","id":1,"method":"tools_call","params":{"name":"delete_file","arguments":{}}}') },
  { label: 'method: escaped \\u0074ools/call', wire: simple('{"jsonrpc":"2.0","id":1,"method":"\\u0074ools/call","params":{"name":"delete_file","arguments":{}}}') },
];

describe('probe 4: fast paths keep "judged is executed"', () => {
  it.each(CASES)('$label', async (c) => {
    const token = await fx.idp.token(AUD);
    const reply = await rawExchange(fx.port, c.wire(token), 600);
    await new Promise((r) => setTimeout(r, 50));
    const reason = /"reason":"([^"]+)"/.exec(reply.text)?.[1] ?? '';
    expect(fx.upstream.ran('delete_file'), c.label).toBe(0);
    expect(fx.upstream.ran('drop_database'), c.label).toBe(0);
    // The caller's token never reaches the upstream, in a header or a query.
    expect(fx.upstream.wire.includes(token.slice(-40)), c.label).toBe(false);
    if (reply.statuses.length === 1 && reason !== '') expect(fx.upstream.bytes, c.label).toBe(0);
    if (c.runs !== undefined) expect(fx.upstream.ran(c.runs), `${c.label}: ${reply.text.slice(0, 300)}`).toBeGreaterThan(0);
    // Whatever ran upstream ran as judged: only read_file or nothing.
    expect(fx.upstream.totalRuns(), c.label).toBe(fx.upstream.ran('read_file'));
  });
});
