// `mcp-warden policy test` and `policy explain`: the gateway's own judge() on cases from a file or
// the command line, so what CI proves is what the gateway does (one code path).
import { principalFrom, type Principal } from '../auth/principal.ts';
import type { Config, UpstreamConfig } from '../config/compile.ts';
import { judge, type Call, type Judgement } from '../policy/decide.ts';
import { methodIsSound } from '../policy/names.ts';
import { deny } from '../reasons.ts';
import type { Expectation, PolicyCase } from './cases.ts';

/** What a case asks: who, where, which call. */
export interface CaseInput {
  readonly upstream?: string | undefined;
  readonly issuer?: string | undefined;
  readonly claims: Readonly<Record<string, unknown>>;
  readonly method?: string | undefined;
  readonly tool?: string | undefined;
  readonly prompt?: string | undefined;
  readonly uri?: string | undefined;
  readonly arguments?: unknown;
}

export interface Evaluated {
  readonly upstream: UpstreamConfig;
  readonly call: Extract<Call, { kind: 'rpc' }>;
  readonly judgement: Judgement;
  readonly notes: readonly string[];
}

// Far in the future: a case judges the policy, not the token's lifetime.
const FAR_EXP = 4_102_444_800;

/** Judges one case as the gateway would; a string says why the case itself cannot be run. */
export function evaluate(config: Config, input: CaseInput): Evaluated | string {
  const upstream = input.upstream === undefined
    ? (config.upstreams.length === 1 ? config.upstreams[0] : undefined)
    : config.upstreams.find((u) => u.name === input.upstream);
  if (upstream === undefined) return input.upstream === undefined ? 'the config has several upstreams: name one (upstream:)' : `no upstream named "${input.upstream}"`;
  const issuer = input.issuer === undefined ? upstream.issuers[0] : upstream.issuers.find((i) => i.name === input.issuer);
  if (issuer === undefined) return `upstream "${upstream.name}" does not accept an issuer named "${input.issuer}"`;
  const principal: Principal | undefined = principalFrom({ sub: 'policy-test', exp: FAR_EXP, ...input.claims }, issuer, 'policy-test');
  if (principal === undefined) return 'the claims would not verify (sub, exp, client_id or the scope claim has the wrong type)';
  const method = input.method ?? (input.tool !== undefined ? 'tools/call' : input.prompt !== undefined ? 'prompts/get' : 'resources/read');
  const call = { kind: 'rpc' as const, method, name: input.tool ?? input.prompt, uri: input.uri, args: input.arguments };
  const notes: string[] = [];
  // The gateway refuses a method outside MCP's grammar before any rule (jsonrpc.ts): so does the case.
  const judgement: Judgement = methodIsSound(method)
    ? judge(principal, upstream, call, notes)
    : { decision: deny('method_invalid'), by: 'name', rule: undefined, condition: undefined, fault: undefined };
  return { upstream, call, judgement, notes };
}

/** "allow by rules[0] (cel:…)", "deny policy_denied by default", "insufficient_scope [a b] by tools[1]". */
export function describeJudgement(j: Judgement): string {
  const d = j.decision;
  const what = d.kind === 'allow' ? 'allow' : d.reason === 'insufficient_scope' ? `insufficient_scope [${(d.scopes ?? []).join(' ')}]` : `deny ${d.reason}`;
  const by = j.rule !== undefined ? `by ${j.rule}` : `by ${j.by}`;
  const cond = j.condition === undefined ? '' : ` (${j.condition}${j.fault === undefined ? '' : `: ${j.fault.fault}${j.fault.column === undefined ? '' : ` at column ${j.fault.column}`}`})`;
  return `${what} ${by}${cond}`;
}

function describeExpectation(e: Expectation): string {
  if (typeof e === 'string') return e;
  if ('allow' in e) return `allow by ${e.allow}`;
  if ('deny' in e) return `deny ${e.deny}`;
  return `insufficient_scope [${e.insufficient_scope.join(' ')}]`;
}

function meets(e: Expectation, j: Judgement): boolean {
  const d = j.decision;
  if (e === 'allow') return d.kind === 'allow';
  if (e === 'deny') return d.kind === 'deny';
  if ('allow' in e) return d.kind === 'allow' && j.rule === e.allow;
  if ('deny' in e) return d.kind === 'deny' && d.reason === e.deny;
  const want = [...e.insufficient_scope].sort().join(' ');
  return d.kind === 'deny' && d.reason === 'insufficient_scope' && [...(d.scopes ?? [])].sort().join(' ') === want;
}

export interface CaseResult {
  readonly name: string;
  readonly line: number | undefined;
  readonly passed: boolean;
  /** One line: what was expected and what the policy decided (never argument values). */
  readonly detail: string;
}

export function runCase(config: Config, c: PolicyCase & { readonly line: number | undefined }): CaseResult {
  const result = evaluate(config, c);
  if (typeof result === 'string') return { name: c.name, line: c.line, passed: false, detail: result };
  const got = describeJudgement(result.judgement);
  const passed = meets(c.expect, result.judgement);
  return { name: c.name, line: c.line, passed, detail: passed ? got : `expected ${describeExpectation(c.expect)}, got ${got}` };
}

/** Test-runner output: one line per case, then "N passed, M failed". */
export function formatResults(file: string, results: readonly CaseResult[]): string {
  const lines = results.map((r) => r.passed ? `  PASS ${r.name} — ${r.detail}` : `  FAIL ${r.name} (${file}${r.line === undefined ? '' : `:${r.line}`}) — ${r.detail}`);
  const failed = results.filter((r) => !r.passed).length;
  return `${file}\n${lines.join('\n')}\n${results.length - failed} passed, ${failed} failed\n`;
}
