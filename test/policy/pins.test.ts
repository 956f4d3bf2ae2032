import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/compile.ts';
import { canonical, definitionHash } from '../../src/policy/pins.ts';

const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-pin-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (pinning: string): string => `publicUrl: https://gw.test
issuers: [{ name: idp, issuer: https://idp.test, algorithms: [ES256] }]
upstreams:
  - name: files
    path: /files/mcp
    target: http://127.0.0.1:3001/mcp
    issuers: [idp]
    pinning: ${pinning}
identity: { signingKeyFile: /dev/null }
`;

describe('tool definition hashes', () => {
  it('are canonical: key order and absent members do not change them; description, schema and annotations do', () => {
    const a = { name: 't', description: 'd', inputSchema: { type: 'object', properties: { q: { type: 'string' } } } };
    const b = { inputSchema: { properties: { q: { type: 'string' } }, type: 'object' }, description: 'd', name: 't', title: 'ignored', outputSchema: undefined };
    expect(definitionHash(a)).toBe(definitionHash(b));
    expect(definitionHash({ ...a, description: 'd2' })).not.toBe(definitionHash(a));
    expect(definitionHash({ ...a, inputSchema: { type: 'object' } })).not.toBe(definitionHash(a));
    expect(definitionHash({ ...a, annotations: { destructiveHint: true } })).not.toBe(definitionHash(a));
    expect(canonical({ b: [1, { d: 2, c: undefined }], a: 'x' })).toBe('{"a":"x","b":[1,{"d":2}]}');
  });
});

describe('pinning config', () => {
  it('refuses onChange: block without a pin file, with file:line', () => {
    expect(() => loadConfigText(config('{ onChange: block }'), 'c.yaml')).toThrow('c.yaml:8: upstreams.0.pinning.file: onChange: block needs a pin file');
  });

  it('refuses a pin file that is not one, with file:line', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{"tools":{"search":"not-a-hash"}}');
    expect(() => loadConfigText(config(`{ onChange: block, file: ${file} }`), 'c.yaml')).toThrow(`c.yaml:8: upstreams.0.pinning.file: ${file}: not a pin file`);
  });

  it('accepts a missing pin file (every tool is new until pinned) and defaults to report, unlisted allowed', () => {
    const [u] = loadConfigText(config(`{ file: ${join(dir, 'absent.json')} }`)).upstreams;
    expect(u?.pinning).toEqual({ onChange: 'report', file: join(dir, 'absent.json'), unlistedTools: 'allow' });
  });
});
