import { connect } from 'node:net';
import { beforeEach, describe, expect, it } from 'vitest';
import { AUD } from '../helpers/gateway.ts';
import { useSdkFixture, type SdkTool } from '../helpers/sdk-express.ts';
import { parseFirstResponse, rawExchange, segmentedExchange } from '../helpers/wire.ts';

// Probe 5, outside attacker: the two newest body refusals, an escaped U+0000 (body_encoding_invalid)
// and a "__proto__" key (json_proto_key), against the MCP SDK's own Express upstream. Every case is
// either refused (400, JSON-RPC -32600 with the expected id, the reason, no stack or token in the
// answer, not one byte upstream) or admitted and runs exactly the tool it was judged as.
// Bodies are written with String.raw: every backslash below is a byte on the wire.

const fx = useSdkFixture();
beforeEach(() => fx.upstream.reset());

const R = String.raw;
const OLD = 'Mcp-Protocol-Version: 2025-03-26\r\n';

/** A tools/call body; `params` and `args` are raw JSON text. */
const call = (name: string, args = '{"path":"a"}', id = '1', extraParams = ''): string =>
  `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":${name.startsWith('"') ? name : JSON.stringify(name)}${extraParams},"arguments":${args}}}`;

function head(token: string, bodyLength: number, extra = '', ct = 'application/json', framing?: string): string {
  return `POST /mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${token}\r\nAccept: application/json, text/event-stream\r\nContent-Type: ${ct}\r\n${extra}${framing ?? `Content-Length: ${bodyLength}\r\n`}Connection: close\r\n\r\n`;
}

type Expect =
  | { readonly kind: 'refuse'; readonly reason: string; readonly id: unknown; readonly status?: number; readonly code?: number }
  | { readonly kind: 'admit'; readonly runs: Partial<Record<SdkTool, number>> };

interface Case {
  readonly label: string;
  /** Body bytes (a string is UTF-8). */
  readonly body: string | Buffer;
  readonly expect: Expect;
  readonly extra?: string;
  readonly ct?: string;
  /** Send the body as chunked transfer coding, cut at these body offsets. */
  readonly chunks?: readonly number[];
  /** Send the body with Content-Length in TCP writes cut at these body offsets, 40 ms apart. */
  readonly segments?: readonly number[];
}

const refuse = (reason: string, id: unknown = 1, status = 400, code = -32600): Expect => ({ kind: 'refuse', reason, id, status, code });
const NUL = refuse('body_encoding_invalid');
const PROTO = refuse('json_proto_key');
const admit = (runs: Partial<Record<SdkTool, number>> = { read_file: 1 }): Expect => ({ kind: 'admit', runs });

function cut(buf: Buffer, at: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  for (const a of at) {
    out.push(buf.subarray(from, a));
    from = a;
  }
  out.push(buf.subarray(from));
  return out;
}

async function exchange(c: Case, token: string): Promise<string> {
  const body = typeof c.body === 'string' ? Buffer.from(c.body, 'utf8') : c.body;
  if (c.chunks !== undefined) {
    const pieces = cut(body, c.chunks).map((p) => Buffer.concat([Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')]));
    const h = Buffer.from(head(token, 0, c.extra, c.ct, 'Transfer-Encoding: chunked\r\n'));
    return segmentedExchange(fx.port, [h, ...pieces, Buffer.from('0\r\n\r\n')], { gapMs: pieces.length > 10 ? 1 : 40, maxMs: 5_000 });
  }
  const h = Buffer.from(head(token, body.length, c.extra, c.ct));
  if (c.segments !== undefined) return segmentedExchange(fx.port, [h, ...cut(body, c.segments)], { gapMs: 40, maxMs: 5_000 });
  return (await rawExchange(fx.port, Buffer.concat([h, body]).toString('latin1'), 3_000)).text;
}

/** Offset of the first occurrence of `needle` in the UTF-8 body, plus `delta`. */
const at = (body: string, needle: string, delta: number): number => Buffer.byteLength(body.slice(0, body.indexOf(needle))) + delta;

const PROTO_SPELLINGS = [
  R`__proto__`,
  R`\u005f_proto__`,
  R`\u005F\u005Fproto\u005F\u005F`,
  R`__\u0070roto__`,
  R`__pr\u006fto__`,
  R`__pr\u006Fto__`,
  R`__prot\u006f__`,
  R`__proto_\u005f`,
  R`\u005f\u005f\u0070\u0072\u006f\u0074\u006f\u005f\u005f`,
  R`\u005F\u005F\u0070\u0072\u006F\u0074\u006F\u005F\u005F`,
];

const longEscaped = (n: number): string => R`\u0041`.repeat(n);
const pad = (n: number): string => 'x'.repeat(n);

const CASES: readonly Case[] = [
  // ---- controls: the harness runs what it should
  { label: 'control: read_file', body: call('read_file'), expect: admit() },
  { label: 'control: delete_file is denied', body: call('delete_file', '{}'), expect: refuse('policy_denied', 1, 403) },
  { label: 'control: escaped name read\\u005Ffile runs read_file', body: call(R`"read\u005Ffile"`), expect: admit() },
  { label: 'control: batch [read_file, search] on 2025-03-26', body: `[${call('read_file')},${call('search', '{}', '2')}]`, extra: OLD, expect: admit({ read_file: 1, search: 1 }) },

  // ---- U+0000 escapes
  { label: 'NUL at end of path', body: call('read_file', R`{"path":"/etc/passwd\u0000.txt"}`), expect: NUL },
  { label: 'NUL alone as path', body: call('read_file', R`{"path":"\u0000"}`), expect: NUL },
  { label: 'NUL in tool name', body: call(R`"read_file\u0000"`), expect: NUL },
  { label: 'NUL in method', body: R`{"jsonrpc":"2.0","id":1,"method":"tools/call\u0000","params":{"name":"read_file","arguments":{"path":"a"}}}`, expect: NUL },
  { label: 'NUL in jsonrpc value', body: R`{"jsonrpc":"2.0\u0000","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a"}}}`, expect: NUL },
  { label: 'NUL as a key in arguments', body: call('read_file', R`{"path":"a","\u0000":1}`), expect: NUL },
  { label: 'NUL suffix on key "name" (second name for C)', body: call('read_file', '{"path":"a"}', '1', R`,"name\u0000":"delete_file"`), expect: NUL },
  { label: 'NUL in top-level key', body: R`{"jsonrpc":"2.0","id":1,"method":"tools/call","x\u0000y":1,"params":{"name":"read_file","arguments":{"path":"a"}}}`, expect: NUL },
  { label: 'NUL in _meta value', body: call('read_file', '{"path":"a"}', '1', R`,"_meta":{"progressToken":"t\u0000"}`), expect: NUL },
  { label: 'NUL in _meta key', body: call('read_file', '{"path":"a"}', '1', R`,"_meta":{"k\u0000":1}`), expect: NUL },
  { label: 'NUL deep in nested arrays', body: call('read_file', R`{"path":"a","x":[[[[{"y":[1,"z\u0000"]}]]]]}`), expect: NUL },
  { label: 'NUL in the middle of a long escaped string', body: call('read_file', `{"path":"${longEscaped(5000)}${R`\u0000`}${longEscaped(5000)}"}`), expect: NUL },
  { label: 'NUL after 40k plain chars', body: call('read_file', `{"path":"a","p":"${pad(40_000)}${R`\u0000`}"}`), expect: NUL },
  { label: 'NUL after escaped backslash: \\\\\\u0000 (backslash, NUL)', body: call('read_file', R`{"path":"a\\\u0000"}`), expect: NUL },
  { label: 'NUL after 3 escaped backslashes (7 backslashes + u0000)', body: call('read_file', R`{"path":"\\\\\\\u0000"}`), expect: NUL },
  { label: 'NUL after escaped quote', body: call('read_file', R`{"path":"a\"\u0000"}`), expect: NUL },
  { label: 'NUL after 20k escaped backslashes', body: call('read_file', `{"path":"${R`\\`.repeat(20_000)}${R`\u0000`}"}`), expect: NUL },
  { label: 'NUL after a surrogate pair', body: call('read_file', R`{"path":"\ud83d\ude00\u0000"}`), expect: NUL },
  { label: 'NUL before a surrogate pair (upper hex)', body: call('read_file', R`{"path":"\u0000\uD83D\uDE00"}`), expect: NUL },
  { label: 'NUL between high and low surrogate', body: call('read_file', R`{"path":"\ud83d\u0000\ude00"}`), expect: NUL },
  { label: 'NUL after raw 4-byte UTF-8 and CJK', body: call('read_file', `{"path":"😀漢字${R`\u0000`}"}`), expect: NUL },
  { label: 'NUL after many raw emoji (UTF-16 vs byte offsets)', body: call('read_file', `{"path":"${'😀'.repeat(3000)}","q":"${R`\u0000`}"}`), expect: NUL },
  { label: 'NUL in a string id (echoed escaped)', body: call('read_file', '{"path":"a"}', R`"a\u0000"`), expect: refuse('body_encoding_invalid', 'a\u0000') },
  { label: 'NUL in a client response', body: R`{"jsonrpc":"2.0","id":1,"result":{"x":"\u0000"}}`, expect: NUL },
  { label: 'NUL in a notification', body: R`{"jsonrpc":"2.0","method":"notifications/initialized","params":{"x":"\u0000"}}`, expect: refuse('body_encoding_invalid', null) },
  { label: 'NUL in second batch element (2025-03-26)', body: `[${call('read_file')},${call('search', R`{"q":"\u0000"}`, '2')}]`, extra: OLD, expect: refuse('body_encoding_invalid', null) },
  { label: 'NUL with CHARSET=UTF-8 upper case content type', body: call('read_file', R`{"path":"a\u0000"}`), ct: 'APPLICATION/JSON; CHARSET=UTF-8', expect: NUL },
  { label: 'NUL with quoted charset', body: call('read_file', R`{"path":"a\u0000"}`), ct: 'application/json;charset="utf-8"', expect: NUL },
  { label: 'overlong NUL (modified UTF-8 C0 80)', body: Buffer.concat([Buffer.from(call('read_file', '{"path":"a').slice(0, -0)), Buffer.from([0xc0, 0x80]), Buffer.from('"}}}')]), expect: refuse('body_encoding_invalid', null) },
  { label: 'invalid \\U0000 (upper U) is not JSON', body: call('read_file', R`{"path":"a\U0000"}`), expect: refuse('body_invalid', null, 400, -32700) },
  { label: 'invalid 3-digit \\u000', body: call('read_file', R`{"path":"a\u000"}`), expect: refuse('body_invalid', null, 400, -32700) },
  // admissions: text that only looks like a NUL
  { label: 'admit: literal text \\\\u0000 (escaped backslash + u0000)', body: call('read_file', R`{"path":"\\u0000"}`), expect: admit() },
  { label: 'admit: 4 backslashes + u0000', body: call('read_file', R`{"path":"\\\\u0000"}`), expect: admit() },
  { label: 'admit: \\u005Cu0000 (escaped backslash spelled \\u005C)', body: call('read_file', R`{"path":"\u005Cu0000"}`), expect: admit() },
  { label: 'admit: \\u005cu0000 key', body: call('read_file', R`{"path":"a","\u005cu0000":1}`), expect: admit() },
  { label: 'admit: \\u0001 is not NUL', body: call('read_file', R`{"path":"a\u0001"}`), expect: admit() },
  { label: 'admit: \\u0100 and \\u1000 are not NUL', body: call('read_file', R`{"path":"\u0100\u1000\u00000"}`.replace(R`\u00000`, R`\u0010`)), expect: admit() },
  { label: 'admit: surrogate pair alone', body: call('read_file', R`{"path":"\uD83D\uDE00"}`), expect: admit() },

  // ---- "__proto__" keys, every spelling, every place
  ...PROTO_SPELLINGS.flatMap((k): Case[] => [
    { label: `"${k}" beside name in params`, body: call('read_file', '{"path":"a"}', '1', `,"${k}":{"name":"delete_file"}`), expect: PROTO },
    { label: `"${k}" in arguments`, body: call('read_file', `{"${k}":{"path":"/etc/passwd"}}`), expect: PROTO },
  ]),
  { label: '__proto__ as whole params carrying name', body: R`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"\u005f_proto__":{"name":"delete_file","arguments":{}}}}`, expect: PROTO },
  { label: '__proto__ top-level before id', body: R`{"__proto__":{"id":9},"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a"}}}`, expect: refuse('json_proto_key', 7) },
  { label: '__proto__ top-level carries the only id', body: R`{"jsonrpc":"2.0","__proto__":{"id":5},"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a"}}}`, expect: refuse('json_proto_key', null) },
  { label: '__proto__ with string id', body: call('read_file', R`{"path":"a","__proto__":1}`, '"abc"'), expect: refuse('json_proto_key', 'abc') },
  { label: '__proto__ in _meta', body: call('read_file', '{"path":"a"}', '1', R`,"_meta":{"__proto__":{"progressToken":1}}`), expect: PROTO },
  { label: '__proto__ nested in arrays', body: call('read_file', R`{"path":"a","x":[1,[{"y":[{"__pr\u006fto__":{"path":"/etc"}}]}]]}`), expect: PROTO },
  { label: '__proto__ at depth ~124', body: call('read_file', `{"path":"a","x":${'['.repeat(120)}{"__proto__":1}${']'.repeat(120)}}`), expect: PROTO },
  { label: '__proto__ beyond depth 128 (either reason)', body: call('read_file', `{"path":"a","x":${'['.repeat(200)}{"__proto__":1}${']'.repeat(200)}}`), expect: refuse('rpc_invalid') },
  { label: '__proto__ with null value', body: call('read_file', R`{"path":"a","__proto__":null}`), expect: PROTO },
  { label: '__proto__ with string value', body: call('read_file', R`{"path":"a","__proto__":"x"}`), expect: PROTO },
  { label: '__proto__ with array value', body: call('read_file', R`{"path":"a","__proto__":[{"path":"b"}]}`), expect: PROTO },
  { label: '__proto__ with space before colon', body: call('read_file', R`{"path":"a","__proto__" :{"x":1}}`), expect: PROTO },
  { label: '__proto__ with tab/CR/LF before colon', body: call('read_file', `{"path":"a","__proto__"\r\n\t :{"x":1}}`), expect: PROTO },
  { label: '__proto__ with whitespace after { and ,', body: call('read_file', `{ \n"path":"a"\t,\r\n  "\\u005f_proto__"\n:\n{}}`), expect: PROTO },
  { label: '__proto__ after a value ending in escaped backslash', body: call('read_file', R`{"path":"a\\","__proto__":{}}`), expect: PROTO },
  { label: '__proto__ after a value ending in \\\\\\"', body: call('read_file', R`{"path":"a\\\"","__proto__":{}}`), expect: PROTO },
  { label: '__proto__ after a value with \\u0022 (escaped quote)', body: call('read_file', R`{"path":"a\u0022","__proto__":{}}`), expect: PROTO },
  { label: '__proto__ after 20k escaped backslashes', body: call('read_file', `{"path":"${R`\\`.repeat(20_000)}","__proto__":{}}`), expect: PROTO },
  { label: '__proto__ after many emoji', body: call('read_file', `{"path":"${'😀'.repeat(3000)}","__proto__":{}}`), expect: PROTO },
  { label: '__proto__ after an empty-string key', body: call('read_file', R`{"":"","path":"a","__proto__":{}}`), expect: PROTO },
  { label: '__proto__ key after key "\\\\"', body: call('read_file', R`{"\\":1,"path":"a","__proto__":{}}`), expect: PROTO },
  { label: '__proto__ in second batch element (2025-03-26)', body: `[${call('read_file')},${call('search', R`{"__proto__":{}}`, '2')}]`, extra: OLD, expect: refuse('json_proto_key', null) },
  { label: '__proto__ in first batch element params', body: `[${call('read_file', '{"path":"a"}', '1', R`,"\u005F\u005Fproto__":{"name":"delete_file"}`)},${call('search', '{}', '2')}]`, extra: OLD, expect: refuse('json_proto_key', null) },
  { label: '__proto__ in a client response', body: R`{"jsonrpc":"2.0","id":1,"result":{"__proto__":{}}}`, expect: PROTO },
  { label: '__proto__ in a notification', body: R`{"jsonrpc":"2.0","method":"notifications/initialized","params":{"__proto__":{}}}`, expect: refuse('json_proto_key', null) },
  { label: '__proto__ with CHARSET=UTF-8', body: call('read_file', R`{"__proto__":{}}`), ct: 'APPLICATION/JSON; CHARSET=UTF-8', expect: PROTO },
  { label: '__proto__ beside duplicate keys (either reason)', body: call('read_file', R`{"path":"a","path":"b","__proto__":{}}`), expect: refuse('json_duplicate_key') },
  // admissions: "__proto__" that is not a key, or not exactly the key
  { label: 'admit: "__proto__" as a value', body: call('read_file', R`{"path":"__proto__"}`), expect: admit() },
  { label: 'admit: "__proto__" as a string id', body: call('read_file', '{"path":"a"}', '"__proto__"'), expect: admit() },
  { label: 'admit: "__proto__" in an array of values', body: call('read_file', R`{"path":"a","x":["__proto__",{"y":"__proto__"}]}`), expect: admit() },
  { label: 'admit: key text inside a value (\\"__proto__\\":)', body: call('read_file', R`{"path":"\",\"__proto__\":{\"x\":1},\"y\":\""}`), expect: admit() },
  { label: 'admit: key text spelled \\u0022 inside a value', body: call('read_file', R`{"path":"\u0022,\u0022__proto__\u0022:{}"}`), expect: admit() },
  { label: 'admit: "constructor":{"prototype":...} beside name', body: call('read_file', '{"path":"a"}', '1', R`,"constructor":{"prototype":{"name":"delete_file"}}`), expect: admit() },
  { label: 'admit: "prototype" key in arguments', body: call('read_file', R`{"path":"a","prototype":{"path":"/etc"}}`), expect: admit() },
  { label: 'admit: "_proto_" / "__proto" / "proto__"', body: call('read_file', R`{"path":"a","_proto_":1,"__proto":2,"proto__":3}`), expect: admit() },
  { label: '"__PROTO__" beside name (plain key to JS)', body: call('read_file', '{"path":"a"}', '1', R`,"__PROTO__":{"name":"delete_file"}`), expect: admit() },
  { label: '"__Proto__" in arguments (plain key to JS)', body: call('read_file', R`{"path":"a","__Proto__":{"path":"/etc"}}`), expect: admit() },
  { label: 'fullwidth "＿＿ｐｒｏｔｏ＿＿" beside name', body: call('read_file', '{"path":"a"}', '1', `,"＿＿ｐｒｏｔｏ＿＿":{"name":"delete_file"}`), expect: admit() },
  { label: '"__proto__ " (trailing space) beside name', body: call('read_file', '{"path":"a"}', '1', `,"__proto__ ":{"name":"delete_file"}`), expect: admit() },

  // ---- framing: split keys and escapes across chunks and TCP segments
  ...((): Case[] => {
    const p = call('read_file', R`{"path":"a","__proto__":{"path":"/etc/passwd"}}`);
    const e = call('read_file', R`{"path":"a\u0000"}`);
    const lit = call('read_file', R`{"path":"\\u0000"}`);
    const odd = call('read_file', R`{"path":"\\\u0000"}`);
    return [
      { label: 'chunked: "__pro|to__"', body: p, chunks: [at(p, '__proto__', 5)], expect: PROTO },
      { label: 'chunked: every byte its own chunk (__proto__)', body: p, chunks: Array.from({ length: Buffer.byteLength(p) - 1 }, (_, i) => i + 1), expect: PROTO },
      { label: 'chunked: "\\|u0000"', body: e, chunks: [at(e, R`\u0000`, 1)], expect: NUL },
      { label: 'chunked: "\\u00|00"', body: e, chunks: [at(e, R`\u0000`, 4)], expect: NUL },
      { label: 'chunked: literal "\\|\\u0000" admitted', body: lit, chunks: [at(lit, R`\\u0000`, 1)], expect: admit() },
      { label: 'chunked: "\\\\|\\u0000" refused', body: odd, chunks: [at(odd, R`\\\u0000`, 2)], expect: NUL },
      { label: 'segments: "__pro|to__" 40 ms apart', body: p, segments: [at(p, '__proto__', 5)], expect: PROTO },
      { label: 'segments: "\\u0|000" 40 ms apart', body: e, segments: [at(e, R`\u0000`, 3)], expect: NUL },
      { label: 'segments: emoji split across segments then NUL', body: call('read_file', `{"path":"😀${R`\u0000`}"}`), segments: [at(call('read_file', `{"path":"😀${R`\u0000`}"}`), '😀', 2)], expect: NUL },
    ];
  })(),

  // ---- size: near express.json's 100 KB and the gateway's 1 MiB limit
  { label: 'admit: 95 KB body runs read_file', body: call('read_file', `{"path":"a","p":"${pad(95_000)}"}`), expect: admit() },
  { label: '__proto__ at the end of a 95 KB body', body: call('read_file', `{"path":"a","p":"${pad(95_000)}","__proto__":{}}`), expect: PROTO },
  { label: 'NUL at the end of a 95 KB body', body: call('read_file', `{"path":"a","p":"${pad(95_000)}${R`\u0000`}"}`), expect: NUL },
  ...((): Case[] => {
    const LIMIT = 1024 * 1024;
    const fill = (tail: string): string => {
      const shell = call('read_file', `{"path":"a","p":"","q":${tail}}`);
      return call('read_file', `{"path":"a","p":"${pad(LIMIT - Buffer.byteLength(shell))}","q":${tail}}`);
    };
    const protoEnd = fill(R`{"\u005f_proto__":1}`);
    const nulEnd = fill(R`"\u0000"`);
    const over = fill(R`"\u0000"`) + ' ';
    return [
      { label: `__proto__ in the last bytes of a body of exactly 1 MiB (${Buffer.byteLength(protoEnd)})`, body: protoEnd, expect: PROTO },
      { label: `NUL in the last bytes of a body of exactly 1 MiB (${Buffer.byteLength(nulEnd)})`, body: nulEnd, expect: NUL },
      { label: '1 MiB + 1 with NUL: 413 body_too_large', body: over, expect: { kind: 'refuse', reason: 'body_too_large', id: undefined, status: 413 } },
      { label: 'chunked 1 MiB with __proto__ split in the last chunk', body: protoEnd, chunks: [LIMIT - 12, LIMIT - 8], expect: PROTO },
    ];
  })(),
];

const LEAKS = [/\bat [\w.<>]+ \(/, /node:internal/, /\/src\//, /node_modules/, /\.ts:\d+/, /TypeError|SyntaxError|RangeError/];

describe('probe 5: NUL escapes and __proto__ keys, judged is executed', () => {
  it.each(CASES)('$label', async (c) => {
    const token = await fx.idp.token(AUD);
    const text = await exchange(c, token);
    await new Promise((r) => setTimeout(r, 60));
    const reply = parseFirstResponse(text);
    // Never: the token or a stack in any answer; never a denied tool upstream.
    expect(text.includes(token), 'token echoed').toBe(false);
    for (const leak of LEAKS) expect(reply.body, `leak ${leak}`).not.toMatch(leak);
    expect(fx.upstream.ran('delete_file'), 'delete_file ran').toBe(0);
    expect(fx.upstream.ran('drop_database'), 'drop_database ran').toBe(0);
    const e = c.expect;
    if (e.kind === 'refuse') {
      expect(reply.status, reply.body).toBe(e.status ?? 400);
      const json = JSON.parse(reply.body) as { id?: unknown; error?: { code?: number; data?: { reason?: string } }; reason?: string };
      expect(json.error?.data?.reason ?? json.reason, reply.body).toBe(e.reason);
      if (e.status === undefined || e.status === 400) {
        expect(json.error?.code, reply.body).toBe(e.code ?? -32600);
        expect(json.id, reply.body).toStrictEqual(e.id);
      }
      expect(fx.upstream.bytes, 'bytes upstream').toBe(0);
      expect(fx.upstream.totalRuns()).toBe(0);
    } else {
      expect(reply.status, reply.body).toBe(200);
      expect(Object.fromEntries(fx.upstream.executions), reply.body).toStrictEqual(e.runs);
      // Forwarded byte for byte: the upstream read exactly the text that was judged.
      const sent = (typeof c.body === 'string' ? Buffer.from(c.body, 'utf8') : c.body).toString('latin1');
      if (c.chunks === undefined) expect(fx.upstream.wire.endsWith(`\r\n\r\n${sent}`), 'body forwarded verbatim').toBe(true);
    }
  });

  it('pipelined on one connection: clean read_file, then a __proto__ body, then a NUL body', async () => {
    const token = await fx.idp.token(AUD);
    const one = call('read_file');
    const two = call('read_file', R`{"path":"a","\u005f_proto__":{"path":"/etc/passwd"}}`, '2');
    const three = call('read_file', R`{"path":"a\u0000"}`, '3');
    const keep = (b: string): string => head(token, Buffer.byteLength(b)).replace('Connection: close\r\n', '') + b;
    const reply = await rawExchange(fx.port, keep(one) + keep(two) + head(token, Buffer.byteLength(three)) + three, 3_000);
    await new Promise((r) => setTimeout(r, 60));
    expect(reply.text.includes(token)).toBe(false);
    expect(reply.statuses).toStrictEqual([200, 400, 400]);
    expect(reply.text).toContain('"id":2,"error":{"code":-32600');
    expect(reply.text).toContain('json_proto_key');
    expect(reply.text).toContain('"id":3,"error":{"code":-32600');
    expect(reply.text).toContain('body_encoding_invalid');
    expect(Object.fromEntries(fx.upstream.executions)).toStrictEqual({ read_file: 1 });
    expect(fx.upstream.wire.includes('_proto__'), 'a refused body reached the upstream').toBe(false);
    expect(fx.upstream.wire.includes('\\u0000'), 'a refused body reached the upstream').toBe(false);
  });
});
