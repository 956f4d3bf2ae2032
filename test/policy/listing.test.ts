import { describe, expect, it } from 'vitest';
import { loadConfigText, type UpstreamConfig } from '../../src/config/compile.ts';
import { createListingGuard, filterJsonText, filterMessage } from '../../src/policy/filter.ts';
import { templateAllowed } from '../../src/policy/templates.ts';
import type { Principal } from '../../src/auth/principal.ts';

const config = loadConfigText(`
publicUrl: https://gw.test
issuers: [{ name: idp, issuer: https://idp.test, algorithms: [ES256] }]
upstreams:
  - name: closed
    path: /closed/mcp
    target: http://127.0.0.1:3001/mcp
    issuers: [idp]
    scopes: [mcp:files]
    default: deny
    rules:
      - { method: resources/read, resource: "file:///docs/secret/", deny: true }
      - { method: resources/read, resource: "file:///docs/" }
      - { method: resources/read, resource: "file:///admin/", scopes: [mcp:admin] }
  - name: open
    path: /open/mcp
    target: http://127.0.0.1:3002/mcp
    issuers: [idp]
    scopes: []
    rules:
      - { method: resources/read, resource: "file:///etc/", deny: true }
identity: { signingKeyFile: /dev/null }
`);
const closed = config.upstreams[0] as UpstreamConfig;
const open = config.upstreams[1] as UpstreamConfig;
const who = (scopes: string): Principal => ({ issuerName: 'idp', iss: 'https://idp.test', sub: 'alice', clientId: 'c', scopes: new Set(scopes.split(' ').filter(Boolean)), exp: 0, jti: undefined, tokenHash: 'h', claims: {} });
const alice = who('mcp:files');

describe('templateAllowed: a template is shown only when every URI it can expand to may be read', () => {
  it.each([
    // [upstream, template, principal, shown]
    [closed, 'file:///docs/a{x}', alice, true], // every expansion starts with file:///docs/a: the docs rule
    [closed, 'file:///docs/a.md', alice, true], // no expression: one URI
    [closed, 'file:///docs/{name}', alice, false], // file:///docs/secret/… is one of its expansions (fail closed)
    [closed, 'file:///docs/secret/{name}', alice, false],
    [closed, 'file:///pub/{name}', alice, false], // default deny
    [closed, 'file:///{path}', alice, false],
    [closed, 'file:///admin/{p}', alice, false], // needs mcp:admin
    [closed, 'file:///admin/{p}', who('mcp:files mcp:admin'), true],
    [closed, 'file:///docs/a{x}', who(''), false], // the upstream's own scope is missing
    [closed, 'file:///docs/a b{x}', alice, false], // a space would be pct-encoded on expansion: not judged
    [closed, "file:///docs/it's{x}", alice, false], // not a literal RFC 6570 allows
    [closed, 'file:///docs/}{x}', alice, false],
    [open, 'file:///home/{p}', alice, true],
    [open, 'file:///{path}', alice, false], // file:///etc/… is among its expansions
    [open, 'file:///e{path}', alice, false],
    [open, 'file:///etc/{p}', alice, false],
  ] as const)('%#: %s', (upstream, template, principal, shown) => {
    expect(templateAllowed(principal, upstream, template)).toBe(shown);
  });
});

describe('filterMessage: listing results are judged by their shape', () => {
  it('filters every listing field of a result, whatever the id, and empties a field that is not an array', () => {
    const doc = {
      jsonrpc: '2.0', id: 'x',
      result: { resources: [{ uri: 'file:///docs/a' }, { uri: 'file:///docs/secret/b' }, { name: 'no uri' }, 'str'], resourceTemplates: { a: { uriTemplate: 'file:///{p}' } }, nextCursor: 'c' },
    };
    expect(filterMessage(doc, alice, closed)).toEqual({ jsonrpc: '2.0', id: 'x', result: { resources: [{ uri: 'file:///docs/a' }], resourceTemplates: [], nextCursor: 'c' } });
  });

  it('leaves errors, notifications and other results as they are', () => {
    const msgs = [{ jsonrpc: '2.0', id: 1, error: { code: 1, message: 'm' } }, { jsonrpc: '2.0', method: 'notifications/tools/list_changed' }, { jsonrpc: '2.0', id: 2, result: { content: [] } }];
    expect(filterMessage(msgs, alice, closed)).toEqual(msgs);
  });
});

describe('filterJsonText: re-serialised when it may hold a listing, refused when it cannot be read', () => {
  it('passes text that cannot hold a listing field unchanged, and parses one written with \\u escapes', () => {
    expect(filterJsonText('{"id":1,"result":{"n":9007199254740993}}', alice, closed)).toBe('{"id":1,"result":{"n":9007199254740993}}');
    expect(filterJsonText('{"id":1,"result":{"\\u0072esources":[{"uri":"file:///etc/x"}]}}', alice, closed)).toBe('{"id":1,"result":{"resources":[]}}');
  });

  it('refuses what is not JSON, or what JSON.parse would change', () => {
    expect(filterJsonText('{"result":{"tools":[', alice, closed)).toBeUndefined();
    expect(filterJsonText('{"id":9007199254740993,"result":{"tools":[]}}', alice, closed)).toBeUndefined();
  });
});

describe('createListingGuard: a body too large to parse is cut before a listing key completes', () => {
  it('refuses the chunk that completes a listing key or escape, wherever the chunks split it', () => {
    for (const key of ['"tools"', '"prompts"', '"resources"', '"resourceTemplates"', '"\\u0074ools"']) {
      const text = Buffer.from(`{"a":"${'x'.repeat(40)}",${key}:[]}`);
      const at = text.indexOf(key);
      for (let split = 0; split <= text.length; split++) {
        // Three chunks, the middle one a single byte: the key may span all of them.
        const parts = [text.subarray(0, split), text.subarray(split, split + 1), text.subarray(split + 1)];
        const guard = createListingGuard();
        let sent = 0;
        for (const p of parts) {
          if (!guard(p)) break;
          sent += p.length;
        }
        // What passed never holds the whole key (nor the first two bytes of a \\u escape).
        expect(sent).toBeLessThan(at + key.length);
      }
    }
  });

  it('accepts a body without listing keys, in any chunking', () => {
    const guard = createListingGuard();
    for (const p of ['{"result":{"content":[{"type":"text","text":"too', 'l prompt resource"}]}}']) expect(guard(Buffer.from(p))).toBe(true);
  });
});
