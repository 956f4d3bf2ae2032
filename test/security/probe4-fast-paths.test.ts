import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AUD, AUD_OTHER, startGateway, type StartedGateway } from '../helpers/gateway.ts';
import { TestIdp } from '../helpers/idp.ts';
import { sdkPolicyConfig, useSdkFixture } from '../helpers/sdk-express.ts';
import { rawExchange, segmentedExchange } from '../helpers/wire.ts';

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
  // Other carriers of the same token: never forwarded (the upstream must not see the caller's token)
  { label: 'carrier: Cookie access_token', wire: (t) => simple(safe, { extra: `Cookie: access_token=${t}\r\n` })(t) },
  { label: 'carrier: X-Access-Token', wire: (t) => simple(safe, { extra: `X-Access-Token: ${t}\r\n` })(t) },
  { label: 'carrier: Proxy-Authorization', wire: (t) => simple(safe, { extra: `Proxy-Authorization: Bearer ${t}\r\n` })(t) },
  { label: 'carrier: X-Forwarded-Authorization', wire: (t) => simple(safe, { extra: `X-Forwarded-Authorization: Bearer ${t}\r\n` })(t) },
  { label: 'carrier: DPoP header holding the token', wire: (t) => simple(safe, { extra: `DPoP: ${t}\r\n` })(t) },
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

/** The pieces with a pause between them (separate TCP segments on loopback); the answer. */
const segmented = (pieces: readonly string[], gapMs: number, closeEarly = false): Promise<string> => segmentedExchange(fx.port, pieces, { gapMs, maxMs: 1_500, closeEarly });
const splitAt = (text: string, ...at: number[]): string[] => [0, ...at].map((from, i) => text.slice(from, [...at, text.length][i]));

describe('probe 4: bodies that arrive in pieces are judged whole', () => {
  it('safe body in three segments runs read_file', async () => {
    const t = await fx.idp.token(AUD);
    const w = simple(safe)(t);
    const h = w.indexOf('\r\n\r\n') + 4;
    const text = await segmented(splitAt(w, h, h + 10, h + 40), 30);
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(fx.upstream.ran('read_file')).toBe(1);
  });

  it('danger split inside the name is refused, nothing upstream', async () => {
    const t = await fx.idp.token(AUD);
    const w = simple(danger)(t);
    const i = w.indexOf('delete_file') + 3;
    const text = await segmented(splitAt(w, i), 30);
    expect(text).toMatch(/^HTTP\/1\.1 403/);
    expect(fx.upstream.bytes).toBe(0);
  });

  it('duplicate name key arriving in a later segment is refused', async () => {
    const t = await fx.idp.token(AUD);
    const w = simple(dangerLast(20))(t);
    const i = w.lastIndexOf('"name"');
    const text = await segmented(splitAt(w, w.indexOf('\r\n\r\n') + 4, i, i + 2), 30);
    expect(text).toMatch(/^HTTP\/1\.1 400/);
    expect(fx.upstream.bytes).toBe(0);
  });

  it('a client that leaves mid-body gets nothing forwarded', async () => {
    const t = await fx.idp.token(AUD);
    const w = simple(safe)(t);
    await segmented([w.slice(0, w.length - 10)], 50, true);
    await new Promise((r) => setTimeout(r, 100));
    expect(fx.upstream.bytes).toBe(0);
  });

  it('pipelined: complete safe request, then danger arriving in pieces', async () => {
    const t = await fx.idp.token(AUD);
    const a = simple(safe)(t);
    const b = simple(call('delete_file', '{}', '2'))(t);
    const text = await segmented([a + b.slice(0, 50), b.slice(50, b.length - 20), b.slice(b.length - 20)], 30);
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text).toMatch(/HTTP\/1\.1 403/);
    expect(fx.upstream.ran('read_file')).toBe(1);
    expect(fx.upstream.ran('delete_file')).toBe(0);
  });
});

describe('probe 4: the token and assertion caches keep (token, upstream) pairs apart', () => {
  const send = async (token: string, path: string, body: string): Promise<number> => (await rawExchange(fx.port, simple(body, { path, extra: 'Connection: close\r\n' })(token), 2_000)).status;
  const assertions = (): string[] => [...fx.upstream.wire.matchAll(/\r\nx-mcp-identity: *([^\r]+)/gi)].map((m) => m[1] as string);
  const aud = (jwt: string): unknown => (JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { aud?: unknown }).aud;

  it('a token cached for /mcp is still refused at /other-mcp, with no byte upstream', async () => {
    const token = await fx.idp.token(AUD);
    expect(await send(token, '/mcp', safe)).toBe(200);
    fx.upstream.reset();
    expect(await send(token, '/other-mcp', safe)).toBe(401);
    expect(await send(token, '/other-mcp', safe)).toBe(401);
    expect(fx.upstream.bytes).toBe(0);
    // And the warm entry for /mcp still works, and still only for what /mcp allows.
    expect(await send(token, '/mcp', safe)).toBe(200);
    expect(await send(token, '/mcp', danger)).toBe(403);
    expect(fx.upstream.ran('delete_file')).toBe(0);
  });

  it('one token good at both upstreams gets each upstream its own assertion and policy', async () => {
    const token = await fx.idp.token(AUD, { aud: [AUD, AUD_OTHER] });
    for (let round = 0; round < 2; round++) {
      fx.upstream.reset();
      expect(await send(token, '/mcp', safe)).toBe(200);
      expect(await send(token, '/other-mcp', safe)).toBe(200);
      // /other-mcp denies by default: a tool /mcp allows is refused there, warm cache or not.
      expect(await send(token, '/other-mcp', call('search', '{}'))).toBe(403);
      const [atMcp, atOther] = assertions();
      expect(atMcp).toBeDefined();
      expect(atOther).toBeDefined();
      expect(atMcp).not.toBe(atOther);
      expect(aud(atMcp as string)).not.toEqual(aud(atOther as string));
      expect(fx.upstream.ran('search')).toBe(0);
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// Response side: a raw node:net upstream answers with bytes of the test's choosing. /mcp filters
// listings (it has rules): delete_file (denied) and drop_database (needs mcp:admin) must never be
// shown to the caller, whatever the framing, escaping, encoding or Content-Type of the answer.

type Answer = Buffer | readonly (Buffer | number)[]; // a number: wait that many ms before the next piece

class RawUpstream {
  readonly server: Server;
  answer: (n: number) => Answer = () => Buffer.alloc(0);
  requests = 0;
  /** Sockets the gateway opened that are still open. */
  readonly open = new Set<Socket>();
  closedAt: number[] = [];

  constructor() {
    this.server = createServer((s) => {
      this.open.add(s);
      s.on('close', () => {
        this.open.delete(s);
        this.closedAt.push(Date.now());
      });
      s.on('error', () => undefined);
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const headText = buf.subarray(0, end).toString('latin1');
          const len = Number(/\r\ncontent-length: *(\d+)/i.exec(headText)?.[1] ?? 0);
          if (buf.length < end + 4 + len) return;
          buf = buf.subarray(end + 4 + len);
          void this.#send(s, this.answer(this.requests++));
        }
      });
    });
  }

  async #send(s: Socket, a: Answer): Promise<void> {
    for (const piece of Buffer.isBuffer(a) ? [a] : a) {
      if (typeof piece === 'number') await new Promise((r) => setTimeout(r, piece));
      else if (!s.destroyed) s.write(piece);
    }
  }

  listen(): Promise<string> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(this.server.address() as AddressInfo).port}`)));
  }

  close(): Promise<void> {
    for (const s of this.open) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const listing = (pad = ''): string =>
  `{"jsonrpc":"2.0","id":1,"result":{${pad}"tools":[{"name":"read_file","inputSchema":{"type":"object"}},{"name":"delete_file","inputSchema":{"type":"object"}},{"name":"drop_database","inputSchema":{"type":"object"}}]}}`;
const httpAnswer = (body: Buffer | string, ct = 'application/json', extra = ''): Buffer => {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: ${ct}\r\n${extra}Content-Length: ${b.length}\r\n\r\n`, 'latin1'), b]);
};
const chunkedAnswer = (pieces: readonly Buffer[], ct = 'application/json', gapMs = 5): Answer => [
  Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: ${ct}\r\nTransfer-Encoding: chunked\r\n\r\n`, 'latin1'),
  ...pieces.flatMap((p) => [Buffer.concat([Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')]), gapMs]),
  Buffer.from('0\r\n\r\n'),
];
/** Splits bytes at the given offsets. */
const cut = (b: Buffer, ...at: number[]): Buffer[] => [0, ...at].map((from, i) => b.subarray(from, [...at, b.length][i]));

function dechunk(body: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = body.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = parseInt(body.subarray(at, lineEnd).toString('latin1'), 16);
    if (!(size > 0)) break;
    out.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(out);
}

/** Every way a client might read the bytes: as UTF-8, UTF-16 either way, latin1 without NULs, JSON escapes undone. */
function shows(body: Buffer, secret: string): boolean {
  const swapped = Buffer.from(body);
  if (swapped.length % 2 === 0) swapped.swap16();
  const texts = [body.toString('utf8'), body.toString('utf16le'), swapped.toString('utf16le'), body.toString('latin1').replaceAll('\u0000', '')];
  return texts.some((t) => t.replace(/\\u([0-9a-fA-F]{4})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))).includes(secret));
}

describe('probe 4: response fast paths never show a hidden listing entry', () => {
  let idp: TestIdp;
  let up: RawUpstream;
  let gw: StartedGateway;
  let port = 0;
  beforeAll(async () => {
    idp = await TestIdp.start();
    up = new RawUpstream();
    const url = await up.listen();
    const config = sdkPolicyConfig(idp.issuer, idp.jwksUri, url);
    const ups = config['upstreams'] as Record<string, unknown>[];
    (ups[0] as Record<string, unknown>)['timeoutMs'] = 800;
    gw = await startGateway(config);
    port = Number(new URL(gw.url).port);
  });
  afterAll(async () => {
    await gw?.close();
    await up?.close();
    await idp?.close();
  });

  const list = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}';
  async function ask(): Promise<{ status: number; body: Buffer; headers: ReadonlyMap<string, readonly string[]> }> {
    const token = await idp.token(AUD);
    const r = await rawExchange(port, simple(list, { extra: 'Connection: close\r\n' })(token), 2_000);
    const raw = Buffer.from(r.text, 'latin1');
    const bodyRaw = raw.subarray(raw.indexOf('\r\n\r\n') + 4);
    const chunked = (r.headers.get('transfer-encoding') ?? []).some((v) => v.includes('chunked'));
    return { status: r.status, body: chunked ? dechunk(bodyRaw) : bodyRaw, headers: r.headers };
  }

  const utf8Pad = `"note":"${'é'.repeat(300)}",`;
  const bigPad = `"note":"${'é€'.repeat(2000)}",`;
  const escaped = listing().replace('"tools"', '"\\u0074ools"');
  const RESPONSES: readonly { label: string; answer: () => Answer }[] = [
    { label: 'control: plain listing', answer: () => httpAnswer(listing()) },
    { label: 'escaped key \\u0074ools', answer: () => httpAnswer(escaped) },
    { label: 'escaped key and names', answer: () => httpAnswer(escaped.replace('"delete_file"', '"d\\u0065lete_file"')) },
    { label: 'escaped key past 4096 bytes', answer: () => httpAnswer(listing(bigPad).replace('"tools"', '"\\u0074ools"')) },
    { label: 'non-ASCII before tools (under 4096)', answer: () => httpAnswer(listing(utf8Pad)) },
    { label: 'non-ASCII before tools (over 4096)', answer: () => httpAnswer(listing(bigPad)) },
    { label: 'chunked: tools split across chunks', answer: () => { const b = Buffer.from(listing(utf8Pad)); const i = b.indexOf('tools'); return chunkedAnswer(cut(b, i + 2)); } },
    { label: 'chunked: \\u escape split across chunks', answer: () => { const b = Buffer.from(escaped); const i = b.indexOf('\\u'); return chunkedAnswer(cut(b, i + 1)); } },
    { label: 'chunked: multi-byte char split, then tools', answer: () => { const b = Buffer.from(listing(utf8Pad)); return chunkedAnswer(cut(b, 40, 41, 301)); } },
    { label: 'chunked: one byte per chunk around tools', answer: () => { const b = Buffer.from(listing()); const i = b.indexOf('tools'); return chunkedAnswer(cut(b, i - 1, i, i + 1, i + 2, i + 3, i + 4, i + 5), 'application/json', 1); } },
    { label: 'UTF-16LE body as application/json', answer: () => httpAnswer(Buffer.from(listing(), 'utf16le')) },
    { label: 'UTF-16LE body with BOM', answer: () => httpAnswer(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(listing(), 'utf16le')])) },
    { label: 'UTF-16BE body', answer: () => httpAnswer(Buffer.from(listing(), 'utf16le').swap16()) },
    { label: 'charset=utf-16le', answer: () => httpAnswer(Buffer.from(listing(), 'utf16le'), 'application/json; charset=utf-16le') },
    { label: 'charset=utf-8 then charset=utf-16le', answer: () => httpAnswer(Buffer.from(listing(), 'utf16le'), 'application/json; charset=utf-8; charset=utf-16le') },
    { label: 'long odd Content-Type (past memo key length)', answer: () => httpAnswer(listing(), `application/json; x=${'a'.repeat(200)}`) },
    { label: 'APPLICATION/JSON', answer: () => httpAnswer(listing(), 'APPLICATION/JSON') },
    { label: 'text/plain with JSON', answer: () => httpAnswer(listing(), 'text/plain') },
    { label: 'no Content-Type', answer: () => Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${listing().length}\r\n\r\n${listing()}`) },
    { label: 'text/event-stream, application/json', answer: () => httpAnswer(listing(), 'text/event-stream, application/json') },
    { label: 'SSE: event split mid multi-byte and mid name', answer: () => { const b = Buffer.from(`event: message\ndata: ${listing(utf8Pad)}\n\n`); const i = b.indexOf('tools'); return chunkedAnswer(cut(b, 30, 31, i + 3), 'text/event-stream'); } },
    { label: 'SSE: escaped key', answer: () => chunkedAnswer([Buffer.from(`data: ${escaped}\n\n`)], 'text/event-stream') },
    { label: 'SSE: CR line endings', answer: () => chunkedAnswer([Buffer.from(`data: ${listing()}\r\r`)], 'text/event-stream') },
    { label: 'SSE: data split over two data lines', answer: () => { const l = listing(); const i = l.indexOf('"tools"'); return chunkedAnswer([Buffer.from(`data: ${l.slice(0, i)}\ndata: ${l.slice(i)}\n\n`)], 'text/event-stream'); } },
    { label: 'SSE: UTF-16LE data', answer: () => chunkedAnswer([Buffer.from(`data: ${listing()}\n\n`, 'utf16le')], 'text/event-stream') },
    { label: 'listing under HTTP 500', answer: () => Buffer.from(httpAnswer(listing()).toString('latin1').replace('200 OK', '500 Internal Server Error'), 'latin1') },
    { label: 'Content-Encoding: identity, gzip', answer: () => httpAnswer(listing(), 'application/json', 'Content-Encoding: identity, gzip\r\n') },
  ];

  it.each(RESPONSES)('$label', async (c) => {
    up.answer = () => c.answer();
    const r = await ask();
    expect(shows(r.body, 'delete_file'), `${c.label}: ${r.status} ${r.body.toString('latin1').slice(0, 200)}`).toBe(false);
    expect(shows(r.body, 'drop_database'), c.label).toBe(false);
    if (c.label.startsWith('control')) expect(r.body.toString('utf8')).toContain('read_file');
  });

  // Content-Type meaning is memoised: an odd type first must not change what the normal type means after.
  it('Content-Type memo: odd types first, then the normal one, still filtered', async () => {
    for (const ct of ['application/json; charset=utf-16le', 'application/json;charset=utf-8;x', 'text/event-stream', 'application/json ', 'application/json']) {
      up.answer = () => httpAnswer(listing(), ct);
      const r = await ask();
      expect(shows(r.body, 'delete_file'), ct).toBe(false);
    }
  });

  it('hop-by-hop fields the upstream Connection names never reach the client', async () => {
    for (const conn of ['keep-alive, x-secret', 'Keep-Alive', 'keep-alive\r\nConnection: x-secret', 'close, X-Secret', ' x-secret ']) {
      up.answer = () => httpAnswer('{"jsonrpc":"2.0","id":1,"result":{}}', 'application/json', `Connection: ${conn}\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\n`);
      const r = await ask();
      expect(r.status, conn).toBe(200);
      if (conn.toLowerCase().includes('x-secret')) expect(r.headers.has('x-secret'), conn).toBe(false);
      expect(r.headers.get('keep-alive')?.some((v) => v.includes('timeout=5')) ?? false, conn).toBe(false);
    }
  });

  it('a client that disconnects mid-request aborts the upstream request', async () => {
    up.answer = () => [60_000]; // never answers
    const before = up.requests;
    const token = await idp.token(AUD);
    const s = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => s.on('connect', () => resolve()));
    s.write(simple('{"jsonrpc":"2.0","id":1,"method":"ping"}')(token), 'latin1');
    const deadline = Date.now() + 2_000;
    while (up.requests === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(up.requests).toBe(before + 1);
    const t0 = Date.now();
    s.destroy();
    // The upstream sees the abort: the gateway closes the connection that carried the request, at once.
    while (!up.closedAt.some((at) => at >= t0) && Date.now() < t0 + 1_000) await new Promise((r) => setTimeout(r, 10));
    expect(up.closedAt.some((at) => at >= t0 && at - t0 < 1_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(up.requests, 'the aborted request is never sent again').toBe(before + 1);
  });

  it('an upstream that never answers is timed out with 504 and its socket closed', async () => {
    up.answer = () => [60_000];
    const t0 = Date.now();
    const r = await ask();
    expect(r.status).toBe(504);
    expect(Date.now() - t0).toBeLessThan(1_900);
  });

  it('an upstream that stalls mid-body after headers does not leak a partial listing', async () => {
    up.answer = () => { const b = Buffer.from(listing()); const i = b.indexOf('delete_file'); return [...(chunkedAnswer([b.subarray(0, i + 4)]) as (Buffer | number)[]).slice(0, -1), 60_000]; };
    const r = await ask();
    expect(shows(r.body, 'dele'), `${r.status} ${r.body.toString('latin1')}`).toBe(false);
  });
});
