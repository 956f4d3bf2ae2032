import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/compile.ts';
import { AUD, AUD_OTHER } from '../helpers/gateway.ts';
import { useSdkFixture } from '../helpers/sdk-express.ts';
import { sendExact, type Reply } from '../helpers/wire.ts';

// Names judged literally and in normalised form (SC-188). Upstream: the MCP SDK's own Express app with
// counting tool handlers. `/mcp` (default allow) denies delete_* and wants mcp:admin for drop_database;
// `/other-mcp` (default deny) allows read_* and file:///docs/ only (helpers/sdk-express.ts sdkPolicyConfig).

const fx = useSdkFixture();

async function rpc(body: unknown, options: { path?: string; scope?: string } = {}): Promise<Reply> {
  const path = options.path ?? '/mcp';
  const token = await fx.idp.token(path === '/mcp' ? AUD : AUD_OTHER, options.scope === undefined ? {} : { scope: options.scope });
  return sendExact(fx.port, 'POST', path, [
    ['Authorization', `Bearer ${token}`], ['Accept', 'application/json, text/event-stream'], ['Content-Type', 'application/json'],
  ], JSON.stringify(body));
}

const call = (name: string, id = 1): unknown => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: { path: 'a' } } });

function expectRefused(reply: Reply, status: number, reason: string, label: string): void {
  expect(reply.status, label).toBe(status);
  expect(JSON.parse(reply.text), label).toMatchObject({ jsonrpc: '2.0', error: { data: { reason } } });
  expect(fx.upstream.bytes, label).toBe(0);
  expect(fx.upstream.totalRuns(), label).toBe(0);
}

describe('SC-188 names: control, zero-width, bidi and edge white space are refused', () => {
  const hidden = [
    'delete_file\u0000', 'delete_file\u0007', 'delete_file\u007f', 'delete_file\u0085', 'delete_file\u009b', 'delete\nfile',
    'delete_file\u200b', '\u200bdelete_file', 'delete\u200c_file', 'delete\u200d_file', 'delete_file\u2060', '\ufeffdelete_file',
    'delete_file\u202e', 'delete\u202a_file\u202c', '\u2066delete_file\u2069', 'delete_file\u200e', 'delete_file\u200f', 'delete_\u061cfile',
    'delete\u00adfile', 'delete_file\u{e0041}', 'delete_file\ufe0f', 'delete_file\u2028',
    ' delete_file', 'delete_file ', 'delete_file\t', '\u00a0delete_file', 'delete_file\u3000', 'read_file ', '',
  ];

  it('SC-188 refuses such tool names with 400 name_invalid, and the SDK upstream sees nothing', async () => {
    for (const name of hidden) {
      fx.upstream.reset();
      const reply = await rpc(call(name, 3));
      // An escaped U+0000 is refused before any name is read: no string in a body may hold one.
      expectRefused(reply, 400, name.includes('\u0000') ? 'body_encoding_invalid' : 'name_invalid', JSON.stringify(name));
      expect(JSON.parse(reply.text)).toMatchObject({ id: 3, error: { code: -32600 } });
    }
  });

  it('SC-188 refuses such prompt names and resource URIs too, on either upstream', async () => {
    for (const [body, path] of [
      [{ jsonrpc: '2.0', id: 1, method: 'prompts/get', params: { name: ' summarize' } }, '/mcp'],
      [{ jsonrpc: '2.0', id: 1, method: 'prompts/get', params: { name: 'summarize\u200b' } }, '/other-mcp'],
      [{ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'file:///docs/readme.md ' } }, '/mcp'],
      [{ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: '\u202efile:///docs/readme.md' } }, '/mcp'],
      [{ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'read_file\u200b', arguments: { path: 'a' } } }, '/other-mcp'],
    ] as const) {
      fx.upstream.reset();
      expectRefused(await rpc(body, { path }), 400, 'name_invalid', JSON.stringify(body));
    }
  });
});

describe('SC-188 names: a restricting rule also judges the normalised form (NFKC, case-folded)', () => {
  it('SC-188 delete_* (deny) refuses other cases, fullwidth and ligature spellings on a default-allow upstream', async () => {
    for (const name of ['Delete_File', 'DELETE_FILE', 'deletE_file', '\uff44elete_file', '\uff44\uff45\uff4c\uff45\uff54\uff45\uff3f\uff46\uff49\uff4c\uff45', 'delete_\ufb01le', 'DELETE_\u017fomething']) {
      fx.upstream.reset();
      expectRefused(await rpc(call(name)), 403, 'policy_denied', name);
    }
  });

  it('SC-188 drop_database (scopes) asks for mcp:admin whatever the spelling', async () => {
    for (const name of ['drop_database', 'Drop_Database', 'DROP_DATABASE', '\uff44rop_database']) {
      fx.upstream.reset();
      const reply = await rpc(call(name));
      expectRefused(reply, 403, 'insufficient_scope', name);
    }
  });

  it('SC-188 a rule met only in normalised form restricts but never grants: with mcp:admin, Drop_Database falls to the default', async () => {
    fx.upstream.reset();
    const loose = await rpc(call('Drop_Database'), { scope: 'mcp:tools mcp:admin' });
    expect(loose.status).toBe(200);
    // Forwarded under the default, and the SDK looks tools up exactly: nothing runs.
    expect(fx.upstream.bytes).toBeGreaterThan(0);
    expect(fx.upstream.totalRuns()).toBe(0);
    fx.upstream.reset();
    const exact = await rpc(call('drop_database'), { scope: 'mcp:tools mcp:admin' });
    expect(exact.status).toBe(200);
    expect(fx.upstream.ran('drop_database')).toBe(1);
  });

  it('SC-188 an allowing rule needs both forms: read_* on a default-deny upstream lets read_file through, never READ_FILE', async () => {
    for (const name of ['READ_FILE', 'Read_file', '\uff52ead_file', 'rEAD_file']) {
      fx.upstream.reset();
      expectRefused(await rpc(call(name), { path: '/other-mcp' }), 403, 'policy_denied', name);
    }
    for (const name of ['drop_database', 'delete_file']) {
      fx.upstream.reset();
      expectRefused(await rpc(call(name), { path: '/other-mcp' }), 403, 'policy_denied', name);
    }
    fx.upstream.reset();
    const ok = await rpc(call('read_file'), { path: '/other-mcp' });
    expect(ok.status).toBe(200);
    expect(fx.upstream.ran('read_file')).toBe(1);
  });
});

describe('SC-188 methods: only MCP method grammar is judged, anything else is refused', () => {
  it('SC-188 refuses methods outside the grammar or loosely spelt MCP methods with 400 method_invalid', async () => {
    for (const method of [
      'Tools/Call', 'TOOLS/CALL', 'tools/Call', 'tools/call ', ' tools/call', 'tools/call/', '/tools/call', 'tools//call', 'tools/call\u0000',
      'tools/call\u200b', 'tools/\uff43all', 'tools/cAll', 'tools/CALL', 'logging/setlevel', 'notifications/roots/listChanged', 'tools/call\n',
      'tools/call?x', 'tools.call', 'rpc.discover', '', 'tools/_call', 'tools/call_', 'x'.repeat(129), 'response',
    ]) {
      fx.upstream.reset();
      const reply = await rpc({ jsonrpc: '2.0', id: 5, method, params: { name: 'delete_file', arguments: {} } });
      expectRefused(reply, 400, method.includes('\u0000') ? 'body_encoding_invalid' : 'method_invalid', JSON.stringify(method));
      expect(JSON.parse(reply.text)).toMatchObject({ id: 5, error: { code: -32600 } });
    }
  });

  it('SC-188 admits every spelling MCP uses (camelCase, underscores, three segments) and unknown methods inside the grammar', async () => {
    for (const [method, id] of [['logging/setLevel', 1], ['resources/templates/list', 2], ['notifications/roots/list_changed', undefined], ['vendor/doThing', 3]] as const) {
      fx.upstream.reset();
      const reply = await rpc({ jsonrpc: '2.0', ...(id === undefined ? {} : { id }), method, params: {} });
      expect(reply.status, method).not.toBe(400);
      expect(fx.upstream.bytes, method).toBeGreaterThan(0);
    }
  });
});

describe('SC-188 resource URIs: judged literally and in normalised URI form', () => {
  const read = (uri: string): unknown => ({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri } });

  it('SC-188 a deny on file:///etc/ judges case, dot segments, encoded and backslash separators and repeated slashes', async () => {
    for (const uri of ['file:///etc/shadow', 'FILE:///ETC/shadow', 'file:///docs/../etc/shadow', 'file:///docs/..%2Fetc/shadow', 'file:///docs/%2e%2e/etc/shadow', 'file:///docs/..\\etc\\shadow', 'file:////etc/shadow', 'file:///%65tc/shadow']) {
      fx.upstream.reset();
      expectRefused(await rpc(read(uri)), 403, 'policy_denied', uri);
    }
  });

  it('SC-188 an allow on file:///docs/ (default deny) admits only URIs under it in both forms', async () => {
    for (const uri of ['file:///docs/../etc/shadow', 'file:///docs/%2e%2e/etc/passwd', 'file:///docs/..%5c..%5cetc/passwd', 'FILE:///DOCS/readme.md', 'file:///Docs/readme.md']) {
      fx.upstream.reset();
      expectRefused(await rpc(read(uri), { path: '/other-mcp' }), 403, 'policy_denied', uri);
    }
    fx.upstream.reset();
    const ok = await rpc(read('file:///docs/readme.md'), { path: '/other-mcp' });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.text)).toMatchObject({ result: { contents: [{ uri: 'file:///docs/readme.md', text: 'readme' }] } });
  });
});

describe('SC-188 config: a rule that could never apply does not load', () => {
  const config = (rule: string): string => `
publicUrl: https://gw.test
issuers: [{ name: idp, issuer: https://idp.test, algorithms: [ES256] }]
upstreams:
  - { name: u, path: /mcp, target: http://127.0.0.1:1/mcp, issuers: [idp], rules: [${rule}] }
identity: { signingKeyFile: /dev/null }
`;
  it('SC-188 refuses a rule method outside the grammar or loosely spelt, and a name with hidden characters', () => {
    for (const [rule, key] of [
      ['{ method: Tools/Call }', 'rules.0.method'],
      ['{ method: logging/setlevel }', 'rules.0.method'],
      ['{ method: "tools/*/" }', 'rules.0.method'],
      ['{ method: tools/call, tool: "delete\\u200b*", deny: true }', 'rules.0.tool'],
      ['{ method: prompts/get, prompt: " secret" }', 'rules.0.prompt'],
      ['{ method: resources/read, resource: "file:///etc/\\u202e" }', 'rules.0.resource'],
    ]) {
      expect(() => loadConfigText(config(rule as string)), rule).toThrow(key as string);
    }
    for (const rule of ['{ method: "tools/*" }', '{ method: "*" }', '{ method: logging/setLevel }', '{ method: notifications/roots/list_changed }']) {
      expect(() => loadConfigText(config(rule)), rule).not.toThrow();
    }
  });
});
