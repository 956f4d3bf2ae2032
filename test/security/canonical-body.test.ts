import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { AUD } from '../helpers/gateway.ts';
import { useSdkFixture } from '../helpers/sdk-express.ts';
import { sendExact, type Reply } from '../helpers/wire.ts';

// The upstream must act on exactly the body the gateway judged (README "What the upstream receives is
// what was judged: request bodies"). Every case runs against the MCP SDK's own Express app
// (createMcpExpressApp: express.json() decodes by charset, inflates content codings, last key wins),
// whose tool handlers count their executions; `/mcp` denies delete_* whatever the scopes.

const fx = useSdkFixture();

type Header = readonly [string, string];
const JSON_TYPE: Header = ['Content-Type', 'application/json'];

function call(name: string, id: number | string = 1, args = '{"path":"a"}'): string {
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"method":"tools/call","params":{"name":${JSON.stringify(name)},"arguments":${args}}}`;
}

async function post(body: string | Buffer | undefined, headers: readonly Header[] = [JSON_TYPE], method = 'POST'): Promise<Reply> {
  const token = await fx.idp.token(AUD);
  return sendExact(fx.port, method, '/mcp', [['Authorization', `Bearer ${token}`], ['Accept', 'application/json, text/event-stream'], ...headers], body);
}

function reasonOf(reply: Reply): unknown {
  const body = JSON.parse(reply.text) as { reason?: string; error?: { data?: { reason?: string } } };
  return body.reason ?? body.error?.data?.reason;
}

/** Refused with this status and reason, and the SDK upstream saw no byte and ran no tool. */
function expectRefused(reply: Reply, status: number, reason: string, label: string): void {
  expect(reply.status, label).toBe(status);
  expect(reasonOf(reply), label).toBe(reason);
  expect(fx.upstream.bytes, label).toBe(0);
  expect(fx.upstream.totalRuns(), label).toBe(0);
}

/** Answered by the tool, and the upstream was told the body is plain application/json, exactly once. */
function expectRanOnce(reply: Reply, tool: 'read_file', label: string): void {
  expect(reply.status, label).toBe(200);
  expect(JSON.parse(reply.text), label).toMatchObject({ jsonrpc: '2.0', result: { content: [{ type: 'text' }] } });
  expect(fx.upstream.ran(tool), label).toBe(1);
  expect(fx.upstream.totalRuns(), label).toBe(1);
  expect(fx.upstream.wire.match(/^content-type:.*$/gim), label).toEqual(['content-type: application/json']);
}

// UTF-8 reads the name "+AGQ-elete_file" (no rule names it: allowed); UTF-7 reads "delete_file".
const UTF7_DELETE = call('+AGQ-elete_file');

describe('SC-185 body charset: only UTF-8 JSON is admitted, and the upstream is told no charset', () => {
  it('SC-185 the attack is real: asked directly with charset=utf-7, the SDK upstream runs delete_file', async () => {
    fx.upstream.reset();
    const reply = await sendExact(Number(new URL(fx.upstream.url).port), 'POST', '/mcp', [
      ['Host', '127.0.0.1'], ['Content-Type', 'application/json; charset=utf-7'], ['Accept', 'application/json, text/event-stream'],
    ], UTF7_DELETE);
    expect(reply.status).toBe(200);
    expect(fx.upstream.ran('delete_file')).toBe(1);
  });

  it('SC-185 refuses every other charset, parameter or media type with 415 before the upstream sees a byte', async () => {
    const types: (readonly Header[])[] = [
      ...[
        'application/json; charset=utf-7', 'application/json; charset=UTF-7', 'application/json;charset="utf-7"',
        'application/json; charset=utf-16', 'application/json; charset=utf-16le', 'application/json; charset=utf-32',
        'application/json; charset=latin1', 'application/json; charset=iso-8859-1', 'application/json; charset=utf8',
        'application/json; charset=utf-8; charset=utf-7', 'application/json; charset=utf-8, charset=utf-7', 'application/json; charset=',
        'application/json; charset="utf-8', 'application/json; x=1', 'application/json; boundary=x', 'application/json x',
        'application/jsonx', 'application/json-seq', 'text/json', 'text/plain', 'application/*',
      ].map((t): Header[] => [['Content-Type', t]]),
      [],
    ];
    for (const headers of types) {
      fx.upstream.reset();
      expectRefused(await post(UTF7_DELETE, headers), 415, 'media_type_unsupported', JSON.stringify(headers));
    }
    // Two Content-Type headers are a framing problem, refused in admission before the type is read.
    for (const headers of [
      [['Content-Type', 'application/json'], ['Content-Type', 'application/json; charset=utf-7']],
      [['Content-Type', 'application/json; charset=utf-7'], ['Content-Type', 'application/json']],
      [['content-type', 'application/json'], ['Content-Type', 'application/json']],
    ] as const) {
      fx.upstream.reset();
      expectRefused(await post(UTF7_DELETE, headers), 400, 'header_duplicate', JSON.stringify(headers));
    }
  });

  it('SC-185 admits application/json with no charset or charset=utf-8 in any spelling, and forwards a bare application/json', async () => {
    for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON;Charset="UTF-8"', 'application/json ; charset=utf-8;', 'application/json;']) {
      fx.upstream.reset();
      expectRanOnce(await post(call('read_file'), [['Content-Type', type]]), 'read_file', type);
    }
  });
});

describe('SC-186 body encoding: a BOM, invalid UTF-8, lone surrogates or a content coding are refused', () => {
  const around = (bytes: number[]): Buffer => Buffer.concat([
    Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file'),
    Buffer.from(bytes),
    Buffer.from('","arguments":{"path":"a"}}}'),
  ]);

  it('SC-186 refuses a UTF-8 or UTF-16 byte order mark with 400', async () => {
    for (const body of [
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(call('read_file'))]),
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(call('read_file'), 'utf16le')]),
      Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(call('read_file'), 'utf16le').swap16()]),
    ]) {
      fx.upstream.reset();
      expectRefused(await post(body), 400, 'body_encoding_invalid', body.subarray(0, 3).toString('hex'));
    }
  });

  it('SC-186 refuses invalid UTF-8 (bad continuation, overlong, encoded surrogate, truncated, beyond U+10FFFF) with 400', async () => {
    for (const bytes of [[0xc3, 0x28], [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xe2, 0x82], [0xff], [0x80], [0xf4, 0x90, 0x80, 0x80]]) {
      fx.upstream.reset();
      expectRefused(await post(around(bytes)), 400, 'body_encoding_invalid', Buffer.from(bytes).toString('hex'));
    }
  });

  it('SC-186 refuses lone surrogate escapes in names, arguments and keys with 400 -32600 for the request id', async () => {
    for (const body of [
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file\\ud800","arguments":{"path":"a"}}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file\\udc00","arguments":{"path":"a"}}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file\\ud800\\u0041","arguments":{"path":"a"}}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file\\ud800\\ud800","arguments":{"path":"a"}}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file\\ude00\\ud83d","arguments":{"path":"a"}}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"\\udfff"}}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a","\\ud800":1}}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a\\ud83d"}}}',
    ]) {
      fx.upstream.reset();
      const reply = await post(body);
      expectRefused(reply, 400, 'body_encoding_invalid', body);
      expect(JSON.parse(reply.text)).toMatchObject({ jsonrpc: '2.0', id: 1, error: { code: -32600 } });
    }
  });

  it('refuses an escaped U+0000 in a key or a value anywhere with 400 -32600: a C-string parser cuts the string there', async () => {
    for (const body of [
      // "name\u0000" is a second "name" to such a parser, and "x.txt" after the NUL is what a rule on the suffix judged.
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","name\\u0000":"delete_file","arguments":{"path":"a"}}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/passwd\\u0000.txt"}}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a","deep":[{"k\\u0000":1}]}}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"\\u0000"}}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a\\\\u0000"}},"x":"\\u0000"}',
    ]) {
      fx.upstream.reset();
      const reply = await post(body);
      expectRefused(reply, 400, 'body_encoding_invalid', body);
      expect(JSON.parse(reply.text)).toMatchObject({ jsonrpc: '2.0', id: 1, error: { code: -32600 } });
    }
  });

  it('refuses a "__proto__" key anywhere with 400 -32600 json_proto_key: an Object.assign copy would read members through it', async () => {
    for (const args of ['{"__proto__":{"path":"/etc/passwd"}}', '{"path":"a","opts":{"__proto__":{"admin":true}}}', '{"path":"a","\\u005f_proto__":{}}', '{"path":"a","list":[{"__proto__":1}]}']) {
      fx.upstream.reset();
      const reply = await post(call('read_file', 1, args));
      expectRefused(reply, 400, 'json_proto_key', args);
      expect(JSON.parse(reply.text)).toMatchObject({ jsonrpc: '2.0', id: 1, error: { code: -32600 } });
    }
    fx.upstream.reset();
    const top = '{"jsonrpc":"2.0","id":1,"method":"tools/call","__proto__":{},"params":{"name":"read_file","arguments":{"path":"a"}}}';
    expectRefused(await post(top), 400, 'json_proto_key', top);
  });

  it('admits keys and values that only look like it: "proto", "__proto", "constructor"/"prototype", a "__proto__" string (positive control)', async () => {
    fx.upstream.reset();
    const args = '{"path":"__proto__","proto":1,"__proto":2,"constructor":{"prototype":3}}';
    expectRanOnce(await post(call('read_file', 1, args)), 'read_file', args);
  });

  it('admits other escaped control characters and an escaped backslash before "u0000" (positive control)', async () => {
    for (const path of ['"a\\u0001b"', '"tab\\tand\\u001f"', '"a\\\\u0000"']) {
      fx.upstream.reset();
      expectRanOnce(await post(call('read_file', 1, `{"path":${path}}`)), 'read_file', path);
    }
  });

  it('SC-186 admits escaped surrogate pairs and raw non-ASCII text (positive control)', async () => {
    for (const path of ['"\\ud83d\\ude00"', '"\\uD83D\\uDE00 and \\u00e9"', '"caf\u00e9 \u{1f600}"']) {
      fx.upstream.reset();
      expectRanOnce(await post(call('read_file', 1, `{"path":${path}}`)), 'read_file', path);
    }
  });

  it('SC-186 refuses any request Content-Encoding with 415, even identity, even on a GET', async () => {
    const body = Buffer.from(call('delete_file'));
    const cases: [string, Buffer][] = [
      ['gzip', gzipSync(body)], ['GZIP', gzipSync(body)], ['x-gzip', gzipSync(body)], ['deflate', deflateSync(body)],
      ['br', brotliCompressSync(body)], ['identity', Buffer.from(call('read_file'))], ['gzip, identity', gzipSync(body)], ['', Buffer.from(call('read_file'))],
    ];
    for (const [coding, payload] of cases) {
      fx.upstream.reset();
      expectRefused(await post(payload, [JSON_TYPE, ['Content-Encoding', coding]]), 415, 'content_encoding_unsupported', coding);
    }
    fx.upstream.reset();
    expectRefused(await post(undefined, [['Content-Encoding', 'gzip']], 'GET'), 415, 'content_encoding_unsupported', 'GET');
  });
});

describe('SC-187 duplicate keys: refused anywhere in the message, so no parser can read another call', () => {
  const head = '{"jsonrpc":"2.0","id":7,';
  const cases: [string, string][] = [
    ['method, denied one last', `${head}"method":"tools/list","method":"tools/call","params":{"name":"delete_file","arguments":{}}}`],
    ['method, denied one first', `${head}"method":"tools/call","params":{"name":"delete_file","arguments":{}},"method":"tools/list"}`],
    ['params, denied one last', `${head}"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a"}},"params":{"name":"delete_file","arguments":{}}}`],
    ['params, denied one first', `${head}"method":"tools/call","params":{"name":"delete_file","arguments":{}},"params":{"name":"read_file","arguments":{"path":"a"}}}`],
    ['params.name, denied one last', `${head}"method":"tools/call","params":{"name":"read_file","name":"delete_file","arguments":{"path":"a"}}}`],
    ['params.name, denied one first', `${head}"method":"tools/call","params":{"name":"delete_file","name":"read_file","arguments":{"path":"a"}}}`],
    ['params.name, escaped spelling', `${head}"method":"tools/call","params":{"name":"read_file","n\\u0061me":"delete_file","arguments":{"path":"a"}}}`],
    ['params.uri', `${head}"method":"resources/read","params":{"uri":"file:///docs/readme.md","uri":"file:///etc/shadow"}}`],
    ['params.arguments', `${head}"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a"},"arguments":{"path":"/etc/shadow"}}}`],
    ['a key deep inside arguments', `${head}"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a","opts":{"x":[{"y":1,"y":2}]}}}}`],
    ['jsonrpc', `${head}"jsonrpc":"2.0","method":"tools/call","params":{"name":"read_file","arguments":{"path":"a"}}}`],
    // A repeated "__proto__" is refused earlier, as json_proto_key (the proto test below the body tests).
    ['constructor', `${head}"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a","constructor":{},"constructor":{"admin":true}}}}`],
    ['_meta', `${head}"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a"},"_meta":{"progressToken":1,"progressToken":2}}}`],
    // Go's encoding/json matches struct fields case-insensitively: these are second methods, names and params to it.
    ['Method beside method', `${head}"method":"tools/list","Method":"tools/call","params":{"name":"delete_file","arguments":{}}}`],
    ['NAME beside name', `${head}"method":"tools/call","params":{"name":"read_file","NAME":"delete_file","arguments":{"path":"a"}}}`],
    ['Params beside params', `${head}"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a"}},"Params":{"name":"delete_file"}}`],
    ['Kelvin-sign spelling', `${head}"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a","kind":1,"\u212aind":2}}}`],
  ];

  it('SC-187 refuses duplicate method, params, name, uri, arguments and deeper keys, in either order or another case, with 400 -32600 and the request id', async () => {
    for (const [label, body] of cases) {
      fx.upstream.reset();
      const reply = await post(body);
      expectRefused(reply, 400, 'json_duplicate_key', label);
      expect(JSON.parse(reply.text), label).toMatchObject({ jsonrpc: '2.0', id: 7, error: { code: -32600 } });
    }
  });

  it('SC-187 answers with a null id when the id itself is repeated, or inside a batch', async () => {
    for (const body of [
      '{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a"}}}',
      '{"jsonrpc":"2.0","id":1,"ID":2,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a"}}}',
      `[${call('read_file', 1)},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"search","name":"delete_file","arguments":{}}}]`,
    ]) {
      fx.upstream.reset();
      const reply = await post(body);
      expectRefused(reply, 400, 'json_duplicate_key', body);
      expect(JSON.parse(reply.text)).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32600 } });
    }
  });

  it('SC-187 admits the same key in different objects (positive control)', async () => {
    fx.upstream.reset();
    expectRanOnce(await post(call('read_file', 1, '{"path":"a","name":"x","opts":{"path":"b","name":"y"},"list":[{"path":1},{"path":2}]}')), 'read_file', 'siblings');
  });

  it('SC-187 forwards integers beyond 2^53 byte for byte, and refuses a JSON-RPC id the gateway cannot hold exactly', async () => {
    fx.upstream.reset();
    const big = '{"path":"a","n":123456789012345678901234567890,"m":-9007199254740993,"f":1.00000000000000000001,"e":1E400}';
    expectRanOnce(await post(call('read_file', 1, big)), 'read_file', 'big numbers');
    expect(fx.upstream.wire).toContain(big);

    for (const id of ['9007199254740993', '-9007199254740993', '1e400', '1.5']) {
      fx.upstream.reset();
      const reply = await post(`{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a"}}}`);
      expectRefused(reply, 400, 'rpc_invalid', id);
      expect(JSON.parse(reply.text)).toMatchObject({ id: null });
    }
    fx.upstream.reset();
    const safe = await post(call('read_file', 9007199254740991));
    expect(JSON.parse(safe.text)).toMatchObject({ id: 9007199254740991 });
    expect(fx.upstream.ran('read_file')).toBe(1);
  });
});
