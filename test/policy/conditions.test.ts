import { describe, expect, it } from 'vitest';
import { loadConfigText, type UpstreamConfig } from '../../src/config/compile.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { decide, judge, type Call } from '../../src/policy/decide.ts';
import { filterMessage } from '../../src/policy/filter.ts';
import { compileUpstreams, principal } from '../helpers/policy.ts';

const [db] = compileUpstreams(`
  - name: db
    path: /db/mcp
    target: http://127.0.0.1:3001/mcp
    issuers: [idp]
    scopes: [mcp:db]
    default: deny
    tools:
      - name: drop_table
        deny: true
        when: '!("dba" in claims.groups)'
      - name: drop_table
    rules:
      - method: tools/call
        tool: run_sql
        when: 'args.database in ["analytics"] && "sre" in claims.groups'
      - method: tools/call
        tool: run_sql
        scopes: [mcp:db:admin]
        when: 'args.database == "billing"'
      - method: tools/call
        tool: sum
        when: 'args.values.all(v, v < 100)'
      - method: tools/call
        tool: echo
        when: 'tool == "echo" && method == "tools/call" && upstream == "db" && args.text.size() < 10'
      - { method: tools/list }
`) as [UpstreamConfig];

const sql = (args: unknown): Call => ({ kind: 'rpc', method: 'tools/call', name: 'run_sql', args });
const sre = principal('mcp:db', { groups: ['sre'] });

describe('CEL conditions (when:) on rules', () => {
  it('allows run_sql on the analytics database for an sre, with the rule and expression id', () => {
    const j = judge(sre, db, sql({ database: 'analytics', query: 'select 1' }));
    expect(j.decision).toEqual({ kind: 'allow', rule: 'rules[0]' });
    expect(j.rule).toBe('rules[0]');
    expect(j.condition).toMatch(/^cel:[0-9a-f]{12}$/);
  });

  it('refuses run_sql on another database: no rule applies, the default denies', () => {
    const j = judge(sre, db, sql({ database: 'hr' }));
    expect(j.decision).toMatchObject({ kind: 'deny', reason: 'policy_denied' });
    expect(j.by).toBe('default');
  });

  it('refuses run_sql on analytics for a caller outside the sre group (a claim in the condition)', () => {
    expect(decide(principal('mcp:db', { groups: ['dev'] }), db, sql({ database: 'analytics' }))).toMatchObject({ reason: 'policy_denied' });
  });

  it('a condition that holds still needs the rule\'s scopes: billing asks for step-up', () => {
    expect(decide(sre, db, sql({ database: 'billing' }))).toEqual({ kind: 'deny', reason: 'insufficient_scope', scopes: ['mcp:db', 'mcp:db:admin'] });
    expect(decide(principal('mcp:db mcp:db:admin'), db, sql({ database: 'billing' }))).toEqual({ kind: 'allow', rule: 'rules[1]' });
  });

  it('a deny rule with a condition refuses only when it holds', () => {
    const drop: Call = { kind: 'rpc', method: 'tools/call', name: 'drop_table', args: {} };
    expect(judge(principal('mcp:db', { groups: ['dev'] }), db, drop)).toMatchObject({ decision: { reason: 'policy_denied' }, rule: 'tools[0]' });
    expect(decide(principal('mcp:db', { groups: ['dba'] }), db, drop)).toEqual({ kind: 'allow', rule: 'tools[1]' });
  });

  it('fails closed on a runtime error (a missing argument), naming the fault and its column, never the value', () => {
    const j = judge(sre, db, sql({ query: 'select secret_value' }));
    expect(j.decision).toMatchObject({ kind: 'deny', reason: 'condition_error' });
    expect(j.fault).toEqual({ fault: 'no_such_field', column: 5 });
    expect(JSON.stringify(j)).not.toContain('secret_value');
  });

  it('fails closed on a claim of the wrong type and on arguments that are not an object', () => {
    expect(decide(principal('mcp:db', { groups: 'sre' }), db, sql({ database: 'analytics' }))).toMatchObject({ reason: 'condition_error' });
    expect(decide(sre, db, sql('analytics'))).toMatchObject({ reason: 'condition_error' });
    expect(decide(principal('mcp:db'), db, sql({ database: 'analytics' }))).toMatchObject({ reason: 'condition_error' });
  });

  it('binds tool, method and upstream', () => {
    expect(decide(sre, db, { kind: 'rpc', method: 'tools/call', name: 'echo', args: { text: 'hi' } })).toEqual({ kind: 'allow', rule: 'rules[3]' });
    expect(decide(sre, db, { kind: 'rpc', method: 'tools/call', name: 'echo', args: { text: 'a much longer text' } })).toMatchObject({ reason: 'policy_denied' });
  });

  it('iterates a list argument within the cost limit, and refuses past it with cost_limit', () => {
    const sum = (values: unknown[]): Call => ({ kind: 'rpc', method: 'tools/call', name: 'sum', args: { values } });
    expect(decide(sre, db, sum([1, 2, 3]))).toEqual({ kind: 'allow', rule: 'rules[2]' });
    expect(decide(sre, db, sum([1, 200]))).toMatchObject({ reason: 'policy_denied' });
    const started = performance.now();
    const j = judge(sre, db, sum(Array.from({ length: 200_000 }, (_, i) => i % 50)));
    expect(j.decision).toMatchObject({ reason: 'condition_error' });
    expect(j.fault?.fault).toBe('cost_limit');
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('bounds work that grows with the square of the input: refused before it runs, not after', () => {
    const [quad] = compileUpstreams(`
  - name: q
    path: /q/mcp
    target: http://127.0.0.1:3001/mcp
    issuers: [idp]
    rules:
      - { method: tools/call, tool: t, when: 'args.l.map(x, args.l).exists(y, y == args.l)' }
`) as [UpstreamConfig];
    const call = (n: number): Call => ({ kind: 'rpc', method: 'tools/call', name: 't', args: { l: Array.from({ length: n }, (_, i) => i) } });
    expect(decide(principal(''), quad, call(100))).toEqual({ kind: 'allow', rule: 'rules[0]' });
    const started = performance.now();
    expect(judge(principal(''), quad, call(100_000)).fault?.fault).toBe('cost_limit');
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('shows a tool in a listing when a condition on its arguments may allow it; a claim condition is judged', () => {
    const listing = { jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'run_sql' }, { name: 'drop_table' }, { name: 'other' }] } };
    const names = (p: ReturnType<typeof principal>): string[] =>
      ((filterMessage(listing, p, db) as { result: { tools: { name: string }[] } }).result.tools).map((t) => t.name);
    expect(names(sre)).toEqual(['run_sql']);
    expect(names(principal('mcp:db', { groups: ['dba'] }))).toEqual(['run_sql', 'drop_table']);
  });

  it('lists a tool whose first conditioned entry would refuse the caller when a later one may allow it', () => {
    const [u] = compileUpstreams(`
  - name: w
    path: /w/mcp
    target: http://127.0.0.1:3001/mcp
    issuers: [idp]
    default: deny
    rules:
      - { method: tools/call, tool: run_sql, scopes: [admin], when: 'args.database == "billing"' }
      - { method: tools/call, tool: run_sql, when: 'args.database == "analytics"' }
      - { method: tools/call, tool: wipe, scopes: [admin], when: 'args.all == true' }
`) as [UpstreamConfig];
    const listing = { jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'run_sql' }, { name: 'wipe' }] } };
    const shown = (filterMessage(listing, principal(''), u) as { result: { tools: { name: string }[] } }).result.tools.map((t) => t.name);
    expect(shown).toEqual(['run_sql']);
  });
});

describe('conditions are compiled with the config', () => {
  const config = (when: string): string => `publicUrl: https://gw.test
issuers: [{ name: idp, issuer: https://idp.test, algorithms: [ES256] }]
upstreams:
  - name: db
    path: /db/mcp
    target: http://127.0.0.1:3001/mcp
    issuers: [idp]
    rules:
      - method: tools/list
      - method: tools/call
        tool: run_sql
        when: ${JSON.stringify(when)}
identity: { signingKeyFile: /dev/null }
`;
  const refusal = (when: string): string => {
    try {
      loadConfigText(config(when), 'policy.yaml');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).message;
    }
    throw new Error('config accepted');
  };

  it('refuses a syntax error with file:line and the key', () => {
    expect(refusal('args.database ==')).toMatch(/^policy\.yaml:12: upstreams\.0\.rules\.1\.when: CEL syntax error: at 1:/);
  });

  it('refuses an undeclared variable and an unknown function (type errors)', () => {
    expect(refusal('argz.database == "x"')).toBe("policy.yaml:12: upstreams.0.rules.1.when: undeclared reference to 'argz' (variables: args, claims, tool, method, upstream)");
    expect(refusal('shell(args.q)')).toBe("policy.yaml:12: upstreams.0.rules.1.when: unknown function 'shell'");
    expect(refusal('"yes"')).toContain('must be a bool expression');
  });

  it('refuses expressions past the static cost bounds', () => {
    expect(refusal(Array.from({ length: 120 }, (_, i) => `args.a${i} == 1`).join(' || '))).toContain('condition too large');
    expect(refusal('args.rows.all(r, r.cells.exists(c, c == 1))')).toContain('inside another one is not allowed');
    expect(refusal('x'.repeat(3000))).toContain('longer than 2048');
  });

  it('refuses a caller-supplied regex pattern and the string functions whose output can outgrow their input', () => {
    expect(refusal('args.q.matches(args.pattern)')).toContain('matches() takes a string literal as its pattern');
    expect(refusal('matches(args.q, args.pattern)')).toContain('matches() takes a string literal as its pattern');
    expect(refusal('args.q.replace("", args.big).size() > 0')).toBe("policy.yaml:12: upstreams.0.rules.1.when: unknown function 'replace'");
    expect(refusal('args.l.join(args.sep) == ""')).toContain("unknown function 'join'");
    expect(() => loadConfigText(config('args.q.matches("^[a-z]+$") && args.q.lowerAscii().trim() == args.q'))).not.toThrow();
  });
});
