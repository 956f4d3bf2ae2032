import { describe, expect, it } from 'vitest';
import type { UpstreamConfig } from '../../src/config/compile.ts';
import { decide, decideAll, type Call } from '../../src/policy/decide.ts';
import type { Principal } from '../../src/auth/principal.ts';
import type { Reason } from '../../src/reasons.ts';
import { compileUpstreams, principal as who } from '../helpers/policy.ts';

// decide(principal, upstream, call) is pure (STYLE rule 7): no gateway, no clock, no I/O. Three
// upstreams compiled from YAML exactly as the gateway compiles them:
// - strict: default deny, two required scopes, rules that shadow each other on purpose;
// - open: default allow, with one deny glob and one scoped prompt rule;
// - clients: a client allow-list (RFC 9068 client_id).
const [strict, open, clients] = compileUpstreams(`
  - name: strict
    path: /strict/mcp
    target: http://127.0.0.1:3001/mcp
    issuers: [idp]
    scopes: [mcp:a, mcp:b]
    default: deny
    tools:
      - { name: danger_*, deny: true }
      - { name: "*_admin", scopes: [mcp:admin, mcp:a] }
    rules:
      - { method: tools/call, tool: danger_ok }
      - { method: tools/call, tool: "x*", deny: true }
      - { method: tools/call, tool: xy }
      - { method: tools/call, tool: read.file }
      - { method: tools/call, tool: "a*z" }
      - { method: tools/call, tool: deploy, claims: { groups: [sre, ops], env: [prod] } }
      - { method: tools/call, tool: release, claims: { groups: [sre] }, scopes: [mcp:release] }
      - { method: ping, deny: true }
      - { method: "tools/*", tool: any_method }
      - { method: resources/read, resource: "file:///docs/", scopes: [mcp:docs] }
      - { method: "resources/*" }
      - { method: prompts/get, prompt: "public_*" }
      - { method: prompts/get, prompt: secret, scopes: [mcp:secret] }
  - name: open
    path: /open/mcp
    target: http://127.0.0.1:3002/mcp
    issuers: [idp]
    scopes: [mcp:open]
    tools:
      - { name: "rm_*", deny: true }
    rules:
      - { method: prompts/get, prompt: "*", scopes: [mcp:prompts] }
  - name: clients
    path: /clients/mcp
    target: http://127.0.0.1:3003/mcp
    issuers: [idp]
    scopes: [mcp:c]
    clients: [app-1, app-2]
`) as [UpstreamConfig, UpstreamConfig, UpstreamConfig];
const tool = (name: string | undefined): Call => ({ kind: 'rpc', method: 'tools/call', name });
const prompt = (name: string): Call => ({ kind: 'rpc', method: 'prompts/get', name });
const read = (uri: string | undefined): Call => ({ kind: 'rpc', method: 'resources/read', uri });
const method = (m: string): Call => ({ kind: 'rpc', method: m });
const HTTP: Call = { kind: 'http' };

/** allow with the rule that allowed it (undefined: upstream scopes or default), or the exact denial. */
type Expected = { readonly allow: string | undefined } | { readonly deny: Reason; readonly scopes?: readonly string[] };
type Case = readonly [name: string, principal: Principal, upstream: UpstreamConfig, call: Call, expected: Expected];

const AB = 'mcp:a mcp:b';
const cases: readonly Case[] = [
  // Required scopes of the upstream: exact, case-sensitive tokens (RFC 6749 §3.3), all of them, named in the hint.
  ['one of two upstream scopes missing: the hint names both', who('mcp:a'), strict, HTTP, { deny: 'insufficient_scope', scopes: ['mcp:a', 'mcp:b'] }],
  ['upstream scopes differ only in case', who('MCP:A MCP:B'), strict, HTTP, { deny: 'insufficient_scope', scopes: ['mcp:a', 'mcp:b'] }],
  ['a longer scope does not contain a shorter one', who('mcp:a:x mcp:b'), strict, HTTP, { deny: 'insufficient_scope', scopes: ['mcp:a', 'mcp:b'] }],
  ['GET/DELETE with the upstream scopes, even under default deny', who(AB), strict, HTTP, { allow: undefined }],
  ['upstream scopes are checked before any rule, even a deny rule', who(''), strict, tool('danger_zone'), { deny: 'insufficient_scope', scopes: ['mcp:a', 'mcp:b'] }],

  // Rule order: tools entries first, then rules, each in file order; the first match decides.
  ['tools[0] deny glob shadows a later rule naming the tool', who(AB), strict, tool('danger_ok'), { deny: 'policy_denied' }],
  ['rules[1] deny glob shadows the later allow of xy', who(AB), strict, tool('xy'), { deny: 'policy_denied' }],
  ['suffix glob: step-up hint is the upstream scopes plus the rule\'s, once each', who(AB), strict, tool('db_admin'), { deny: 'insufficient_scope', scopes: ['mcp:a', 'mcp:b', 'mcp:admin'] }],
  ['suffix glob with the admin scope', who(`${AB} mcp:admin`), strict, tool('db_admin'), { allow: 'tools[1]' }],

  // Glob semantics: * is the only wildcard (any run, also empty); everything else literal and anchored.
  ['"." in a pattern is literal', who(AB), strict, tool('read.file'), { allow: 'rules[3]' }],
  ['"." does not match another character', who(AB), strict, tool('readXfile'), { deny: 'policy_denied' }],
  ['inner * matches a run', who(AB), strict, tool('a-to-z'), { allow: 'rules[4]' }],
  ['inner * matches the empty run', who(AB), strict, tool('az'), { allow: 'rules[4]' }],
  ['patterns are anchored at the end', who(AB), strict, tool('a-to-z2'), { deny: 'policy_denied' }],
  ['patterns are anchored at the start', who(AB), strict, tool('ba-z'), { deny: 'policy_denied' }],
  ['a glob in the method: tools/* with a tool target', who(AB), strict, tool('any_method'), { allow: 'rules[8]' }],
  ['tools/call without a name matches no tool rule: default deny', who(AB), strict, tool(undefined), { deny: 'policy_denied' }],
  ['a tool rule does not match a prompt of the same name', who(AB), strict, prompt('read.file'), { deny: 'policy_denied' }],

  // Claims rules: every listed claim must hold; a claim matches a string or an array containing one.
  ['claims: both claims hold (array and string)', who(AB, { groups: ['dev', 'ops'], env: 'prod' }), strict, tool('deploy'), { allow: 'rules[5]' }],
  ['claims: one of two claims missing', who(AB, { groups: ['sre'] }), strict, tool('deploy'), { deny: 'policy_denied' }],
  ['claims: value not accepted', who(AB, { groups: 'sre', env: 'staging' }), strict, tool('deploy'), { deny: 'policy_denied' }],
  ['claims: accepted values are compared case-sensitively', who(AB, { groups: 'SRE', env: 'prod' }), strict, tool('deploy'), { deny: 'policy_denied' }],
  ['claims: non-string array members never match', who(AB, { groups: [1, null, { sre: true }], env: 'prod' }), strict, tool('deploy'), { deny: 'policy_denied' }],
  ['claims: a nested array is not its string', who(AB, { groups: [['sre']], env: 'prod' }), strict, tool('deploy'), { deny: 'policy_denied' }],
  ['claims: a claim of another type never matches', who(AB, { groups: true, env: 'prod' }), strict, tool('deploy'), { deny: 'policy_denied' }],
  ['claims fail before scopes: no step-up hint for a caller who cannot qualify', who(AB, { groups: ['dev'] }), strict, tool('release'), { deny: 'policy_denied' }],
  ['claims hold, rule scope missing: step-up hint', who(AB, { groups: ['sre'] }), strict, tool('release'), { deny: 'insufficient_scope', scopes: ['mcp:a', 'mcp:b', 'mcp:release'] }],
  ['claims hold and rule scope present', who(`${AB} mcp:release`, { groups: ['sre'] }), strict, tool('release'), { allow: 'rules[6]' }],

  // Housekeeping is allowed without a rule, unless a rule names it.
  ['housekeeping: initialize under default deny', who(AB), strict, method('initialize'), { allow: undefined }],
  ['housekeeping: notifications/cancelled under default deny', who(AB), strict, method('notifications/cancelled'), { allow: undefined }],
  ['housekeeping named by a deny rule is denied', who(AB), strict, method('ping'), { deny: 'policy_denied' }],
  ['a notification that is not housekeeping follows the default', who(AB), strict, method('notifications/message'), { deny: 'policy_denied' }],
  ['an unknown method follows the default (deny)', who(AB), strict, method('tools/call2'), { deny: 'policy_denied' }],
  ['an unknown method follows the default (allow)', who('mcp:open'), open, method('vendor/anything'), { allow: undefined }],

  // resources/read by URI prefix (literal, no glob), before the method-wide resources/* rule.
  ['resources/read under the prefix without its scope', who(AB), strict, read('file:///docs/a.md'), { deny: 'insufficient_scope', scopes: ['mcp:a', 'mcp:b', 'mcp:docs'] }],
  ['resources/read under the prefix with its scope', who(`${AB} mcp:docs`), strict, read('file:///docs/a.md'), { allow: 'rules[9]' }],
  ['resources/read of the prefix without its slash is not under it', who(AB), strict, read('file:///docs'), { allow: 'rules[10]' }],
  // A restricting rule also applies to the normalised (case-folded) URI, so another spelling of the prefix
  // cannot step around it (issue 15 point 4).
  ['resources/read: another case of a restricted prefix is restricted too', who(AB), strict, read('file:///DOCS/a.md'), { deny: 'insufficient_scope', scopes: ['mcp:a', 'mcp:b', 'mcp:docs'] }],
  ['resources/read without a uri matches no prefix rule', who(AB), strict, read(undefined), { allow: 'rules[10]' }],
  ['resources/list through the method glob', who(AB), strict, method('resources/list'), { allow: 'rules[10]' }],

  // prompts/get by name.
  ['prompt by glob', who(AB), strict, prompt('public_faq'), { allow: 'rules[11]' }],
  ['prompt with a scope, missing', who(AB), strict, prompt('secret'), { deny: 'insufficient_scope', scopes: ['mcp:a', 'mcp:b', 'mcp:secret'] }],
  ['prompt with a scope, present', who(`${AB} mcp:secret`), strict, prompt('secret'), { allow: 'rules[12]' }],
  ['prompt no rule names: default deny', who(AB), strict, prompt('secret_2'), { deny: 'policy_denied' }],

  // Default allow still honours deny and scope rules.
  ['default allow: a tool no rule names', who('mcp:open'), open, tool('search'), { allow: undefined }],
  ['default allow: a deny glob', who('mcp:open'), open, tool('rm_rf'), { deny: 'policy_denied' }],
  ['default allow: the deny glob is anchored', who('mcp:open'), open, tool('xrm_rf'), { allow: undefined }],
  ['default allow: every prompt needs mcp:prompts', who('mcp:open'), open, prompt('anything'), { deny: 'insufficient_scope', scopes: ['mcp:open', 'mcp:prompts'] }],
  ['default allow: upstream scope still required', who('mcp:prompts'), open, tool('search'), { deny: 'insufficient_scope', scopes: ['mcp:open'] }],

  // Client allow-list (SC-067): checked first, exact.
  ['listed client', who('mcp:c', {}, 'app-2'), clients, tool('search'), { allow: undefined }],
  ['unlisted client, even with every scope', who('mcp:c', {}, 'rogue'), clients, HTTP, { deny: 'client_not_allowed' }],
  ['no client_id', { ...who('mcp:c'), clientId: undefined }, clients, HTTP, { deny: 'client_not_allowed' }],
  ['client ids differ only in case', who('mcp:c', {}, 'APP-1'), clients, HTTP, { deny: 'client_not_allowed' }],
  ['the client check comes before the scope check', who('', {}, 'rogue'), clients, HTTP, { deny: 'client_not_allowed' }],
  ['listed client without the upstream scope', who('', {}, 'app-1'), clients, HTTP, { deny: 'insufficient_scope', scopes: ['mcp:c'] }],
];

function expected(e: Expected): unknown {
  if ('allow' in e) return { kind: 'allow', rule: e.allow };
  return e.scopes === undefined ? { kind: 'deny', reason: e.deny } : { kind: 'deny', reason: e.deny, scopes: e.scopes };
}

describe('decide(principal, upstream, call) as a table: scopes, rule order, globs, claims, methods, resources, prompts, clients', () => {
  for (const [name, principal, upstream, call, e] of cases) {
    it(name, () => {
      expect(decide(principal, upstream, call)).toStrictEqual(expected(e));
    });
  }

  it('is pure: the same inputs give equal decisions, and the inputs are not changed', () => {
    const p = who(AB, { groups: ['sre'] });
    const before = JSON.stringify({ scopes: [...p.scopes], claims: p.claims });
    const first = decide(p, strict, tool('release'));
    expect(decide(p, strict, tool('release'))).toStrictEqual(first);
    expect(JSON.stringify({ scopes: [...p.scopes], claims: p.claims })).toBe(before);
  });
});

interface Message {
  readonly method: string;
  readonly name: string | undefined;
  readonly uri: string | undefined;
  readonly id: string | number | null;
}
const msg = (id: string | number | null, m: string, name?: string, uri?: string): Message => ({ method: m, name, uri, id });

describe('decideAll: every message of a batch is judged, the first denial refuses the whole request', () => {
  it('allows a batch whose every message is allowed, reporting the first message\'s rule', () => {
    const batch = [msg(1, 'tools/call', 'read.file'), msg(2, 'prompts/get', 'public_faq'), msg(null, 'notifications/cancelled')];
    expect(decideAll(who(AB), strict, batch)).toStrictEqual({ allow: { kind: 'allow', rule: 'rules[3]' } });
  });

  it('refuses the whole batch at its one denied message, with that message\'s id', () => {
    const batch = [msg(1, 'tools/call', 'read.file'), msg('b', 'tools/call', 'danger_zone'), msg(3, 'prompts/get', 'public_faq')];
    const verdict = decideAll(who(AB), strict, batch);
    expect(verdict).toStrictEqual({ denial: { kind: 'deny', reason: 'policy_denied', rpcId: 'b' }, message: batch[1] });
  });

  it('reports the first of several denials, keeping its step-up hint', () => {
    const batch = [msg(7, 'resources/read', undefined, 'file:///docs/a.md'), msg(8, 'tools/call', 'danger_zone')];
    expect(decideAll(who(AB), strict, batch)).toStrictEqual({
      denial: { kind: 'deny', reason: 'insufficient_scope', scopes: ['mcp:a', 'mcp:b', 'mcp:docs'], rpcId: 7 },
      message: batch[0],
    });
  });

  it('carries a null id for a denied notification', () => {
    const batch = [msg(null, 'notifications/message')];
    expect(decideAll(who(AB), strict, batch)).toStrictEqual({ denial: { kind: 'deny', reason: 'policy_denied', rpcId: null }, message: batch[0] });
  });

  it('refuses a batch of housekeeping when the upstream scopes are missing', () => {
    const batch = [msg(1, 'initialize'), msg(null, 'notifications/initialized')];
    expect(decideAll(who('mcp:a'), strict, batch)).toStrictEqual({
      denial: { kind: 'deny', reason: 'insufficient_scope', scopes: ['mcp:a', 'mcp:b'], rpcId: 1 },
      message: batch[0],
    });
  });

  it('judges a single message as decide does', () => {
    for (const [, principal, upstream, call] of cases) {
      if (call.kind !== 'rpc') continue;
      const m = msg(1, call.method, call.name, call.uri);
      const single = decide(principal, upstream, call);
      const all = decideAll(principal, upstream, [m]);
      expect(all).toStrictEqual(single.kind === 'allow' ? { allow: single } : { denial: { ...single, rpcId: 1 }, message: m });
    }
  });
});
