import { describe, expect, it } from 'vitest';
import type { UpstreamConfig } from '../../src/config/compile.ts';
import { decide, type Call } from '../../src/policy/decide.ts';
import type { Principal } from '../../src/auth/principal.ts';
import { compileUpstreams, principal } from '../helpers/policy.ts';

const [files, open] = compileUpstreams(`
  - name: files
    path: /files/mcp
    target: http://127.0.0.1:3001/mcp
    issuers: [idp]
    scopes: [mcp:files]
    default: deny
    tools:
      - { name: delete_*, scopes: [mcp:files:admin] }
      - { name: shutdown, deny: true }
    rules:
      - { method: tools/call, tool: "read_*" }
      - { method: tools/call, tool: deploy, claims: { groups: [sre, ops] } }
      - { method: tools/list }
      - { method: resources/read, resource: "file:///docs/", scopes: [mcp:docs] }
      - { method: prompts/get, prompt: summarize }
  - name: open
    path: /open/mcp
    target: http://127.0.0.1:3002/mcp
    issuers: [idp]
    scopes: []
`) as [UpstreamConfig, UpstreamConfig];
const rpc = (method: string, name?: string, uri?: string): Call => ({ kind: 'rpc', method, name, uri });

describe('decide(principal, upstream, call): the policy as a table', () => {
  const cases: [string, Principal, UpstreamConfig, Call, string, readonly string[] | undefined][] = [
    ['upstream scope missing', principal('x'), files, { kind: 'http' }, 'insufficient_scope', ['mcp:files']],
    ['GET/DELETE need only the upstream scopes', principal('mcp:files'), files, { kind: 'http' }, 'allow', undefined],
    ['explicitly allowed tool by glob', principal('mcp:files'), files, rpc('tools/call', 'read_file'), 'allow', undefined],
    ['admin tool without admin scope: step-up hint keeps the upstream scope', principal('mcp:files'), files, rpc('tools/call', 'delete_repo'), 'insufficient_scope', ['mcp:files', 'mcp:files:admin']],
    ['admin tool with admin scope', principal('mcp:files mcp:files:admin'), files, rpc('tools/call', 'delete_repo'), 'allow', undefined],
    ['deny rule wins whatever the scopes', principal('mcp:files mcp:files:admin'), files, rpc('tools/call', 'shutdown'), 'policy_denied', undefined],
    ['claims rule: group matches (array claim)', principal('mcp:files', { groups: ['dev', 'sre'] }), files, rpc('tools/call', 'deploy'), 'allow', undefined],
    ['claims rule: group does not match', principal('mcp:files', { groups: ['dev'] }), files, rpc('tools/call', 'deploy'), 'policy_denied', undefined],
    ['claims rule: claim absent', principal('mcp:files'), files, rpc('tools/call', 'deploy'), 'policy_denied', undefined],
    ['claims rule: claim of the wrong type', principal('mcp:files', { groups: { sre: true } }), files, rpc('tools/call', 'deploy'), 'policy_denied', undefined],
    ['SC-135 tool no rule names, default deny', principal('mcp:files'), files, rpc('tools/call', 'search'), 'policy_denied', undefined],
    ['SC-142 unknown method, default deny', principal('mcp:files'), files, rpc('tools/call2'), 'policy_denied', undefined],
    ['resources/read under an allowed prefix needs its scope', principal('mcp:files'), files, rpc('resources/read', undefined, 'file:///docs/a.md'), 'insufficient_scope', ['mcp:files', 'mcp:docs']],
    ['resources/read under the prefix with the scope', principal('mcp:files mcp:docs'), files, rpc('resources/read', undefined, 'file:///docs/a.md'), 'allow', undefined],
    ['resources/read outside the prefix, default deny', principal('mcp:files mcp:docs'), files, rpc('resources/read', undefined, 'file:///etc/shadow'), 'policy_denied', undefined],
    ['prompt allowed by name', principal('mcp:files'), files, rpc('prompts/get', 'summarize'), 'allow', undefined],
    ['housekeeping: initialize', principal('mcp:files'), files, rpc('initialize'), 'allow', undefined],
    ['housekeeping: a client response', principal('mcp:files'), files, rpc('response'), 'allow', undefined],
    ['housekeeping still needs the upstream scope', principal(''), files, rpc('ping'), 'insufficient_scope', ['mcp:files']],
    ['tool name is matched exactly (case-sensitive)', principal('mcp:files'), files, rpc('tools/call', 'READ_file'), 'policy_denied', undefined],
    ['default allow: any tool with the upstream scopes', principal(''), open, rpc('tools/call', 'anything'), 'allow', undefined],
    ['SC-188 a restricting rule judges the case-folded name: Delete_repo needs the admin scope', principal('mcp:files'), files, rpc('tools/call', 'Delete_repo'), 'insufficient_scope', ['mcp:files', 'mcp:files:admin']],
    ['SC-188 ... and grants nothing once satisfied: Delete_repo with admin falls to default deny', principal('mcp:files mcp:files:admin'), files, rpc('tools/call', 'Delete_repo'), 'policy_denied', undefined],
    ['SC-188 a deny rule judges the NFKC form: fullwidth ｓhutdown', principal('mcp:files mcp:files:admin'), files, rpc('tools/call', '\uff53hutdown'), 'policy_denied', undefined],
    ['SC-188 a deny rule judges SHUTDOWN', principal('mcp:files'), files, rpc('tools/call', 'SHUTDOWN'), 'policy_denied', undefined],
    ['SC-188 a claims rule judges Deploy: wrong group refused', principal('mcp:files', { groups: ['dev'] }), files, rpc('tools/call', 'Deploy'), 'policy_denied', undefined],
    ['SC-188 a resource rule judges the folded URI: FILE:///DOCS/ needs mcp:docs', principal('mcp:files'), files, rpc('resources/read', undefined, 'FILE:///DOCS/a.md'), 'insufficient_scope', ['mcp:files', 'mcp:docs']],
    ['SC-188 ... and never grants it: with mcp:docs, default deny', principal('mcp:files mcp:docs'), files, rpc('resources/read', undefined, 'FILE:///DOCS/a.md'), 'policy_denied', undefined],
    ['SC-188 an allowing glob needs both forms: Read_file is not read_*', principal('mcp:files'), files, rpc('tools/call', 'Read_file'), 'policy_denied', undefined],
    ['SC-188 an allowing glob with both forms: read_ﬁle (ligature) folds to read_file and matches literally', principal('mcp:files'), files, rpc('tools/call', 'read_\ufb01le'), 'allow', undefined],
    ['SC-188 an allowing prefix needs both forms: file:///docs/../etc/shadow is not under file:///docs/', principal('mcp:files mcp:docs'), files, rpc('resources/read', undefined, 'file:///docs/../etc/shadow'), 'policy_denied', undefined],
    ['SC-188 ... nor its encoded and backslash spellings', principal('mcp:files mcp:docs'), files, rpc('resources/read', undefined, 'file:///docs/..%2f..%5cetc/shadow'), 'policy_denied', undefined],
    ['SC-188 a name with a zero-width character is not judged at all', principal('mcp:files'), files, rpc('tools/call', 'read_file\u200b'), 'name_invalid', undefined],
  ];
  for (const [name, p, upstream, call, expected, scopes] of cases) {
    it(name, () => {
      const d = decide(p, upstream, call);
      if (expected === 'allow') {
        expect(d.kind).toBe('allow');
      } else {
        expect(d).toMatchObject({ kind: 'deny', reason: expected });
        expect((d as { scopes?: readonly string[] }).scopes).toEqual(scopes);
      }
    });
  }

  it('client allow-list (SC-067): a client not listed is refused even with every scope', () => {
    const restricted = compileUpstreams('  - { name: u, path: /mcp, target: http://127.0.0.1:1/, issuers: [idp], clients: [ok-client] }')[0] as UpstreamConfig;
    expect(decide({ ...principal(''), clientId: 'rogue-client' }, restricted, { kind: 'http' })).toMatchObject({ reason: 'client_not_allowed' });
    expect(decide({ ...principal(''), clientId: undefined }, restricted, { kind: 'http' })).toMatchObject({ reason: 'client_not_allowed' });
    expect(decide({ ...principal(''), clientId: 'ok-client' }, restricted, { kind: 'http' }).kind).toBe('allow');
  });
});
