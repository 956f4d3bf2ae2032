import type { UpstreamConfig } from '../config/compile.ts';
import type { Principal } from '../auth/principal.ts';
import { deny, type Denial } from '../reasons.ts';
import type { Fit, JudgedName, PolicyRule } from './compile.ts';
import type { ConditionFault } from './condition.ts';
import { fold, foldUri, nameIsSound } from './names.ts';

export interface Allow {
  readonly kind: 'allow';
  /** The rule that allowed it, for the audit log; undefined = upstream scopes / default. */
  readonly rule: string | undefined;
}

/** What the request asks the upstream to do. */
export type Call =
  | { readonly kind: 'http' } // GET stream or DELETE: no JSON-RPC body to judge
  | {
    readonly kind: 'rpc';
    readonly method: string;
    readonly name?: string | undefined;
    readonly uri?: string | undefined;
    /** params.arguments of tools/call and prompts/get, for rule conditions (`args`). */
    readonly args?: unknown;
    /** Judging an item of a listing (filter.ts): there are no arguments yet (see condition()). */
    readonly listing?: boolean;
  };

/** A decision with what decided it, for the audit line and `policy explain` (never argument values). */
export interface Judgement {
  readonly decision: Allow | Denial;
  /** The step that decided: the client list, the upstream's scopes, the name check, a rule, or the fallback. */
  readonly by: 'clients' | 'scopes' | 'name' | 'rule' | 'housekeeping' | 'default';
  /** The deciding rule ("tools[0]", "rules[2]"), when a rule decided. */
  readonly rule: string | undefined;
  /** The deciding rule's condition id ("cel:…"), when it has one. */
  readonly condition: string | undefined;
  /** Why the condition could not be decided (condition_error), with its column in the expression. */
  readonly fault: { readonly fault: ConditionFault; readonly column: number | undefined } | undefined;
}

// Protocol housekeeping a client must be able to send whatever the default (lifecycle, liveness,
// cancellation), unless a rule names it explicitly. A client's JSON-RPC responses (to sampling or
// elicitation requests) are judged as the pseudo-method "response". From 2026-07-28, server/discover
// takes initialize's place (versioning "Protocol Version Negotiation") and subscriptions/listen the
// GET stream's (basic/patterns/subscriptions): like them, each needs only the upstream's scopes; what
// a listen stream carries is filtered like listings (policy/filter.ts).
const HOUSEKEEPING = new Set([
  'initialize', 'ping', 'response', 'server/discover', 'subscriptions/listen',
  'notifications/initialized', 'notifications/cancelled', 'notifications/progress', 'notifications/roots/list_changed',
]);

const ALLOW_BY_SCOPES: Allow = Object.freeze({ kind: 'allow', rule: undefined });

/**
 * Authorization as a pure function (STYLE rule 7): same inputs, same decision; no I/O.
 * 1. client allow-list (RFC 9068 client_id; confused-deputy guard, SC-067)
 * 2. the upstream's required scopes (exact, case-sensitive tokens: RFC 6749 §3.3, SC-063)
 * 3. the rules in order: a rule whose method and target meet the call, literally or in normalised form
 *    (NFKC, case-folded: SC-188), and whose `when` condition holds (a false one: the rule does not
 *    apply; one that cannot be decided: condition_error), refuses by deny, claims or scopes; its
 *    allowing needs an exact fit, so a rule met only by the normalised form restricts and the search
 *    goes on
 * 4. no rule allowed it: housekeeping allowed; otherwise the upstream's default (allow | deny)
 */
export function decide(principal: Principal, upstream: UpstreamConfig, call: Call): Allow | Denial {
  return judge(principal, upstream, call).decision;
}

const BY_SCOPES: Judgement = Object.freeze({ decision: ALLOW_BY_SCOPES, by: 'scopes', rule: undefined, condition: undefined, fault: undefined });
const HOUSEKEEPING_ALLOWED: Judgement = Object.freeze({ ...BY_SCOPES, by: 'housekeeping' });
const DEFAULT_ALLOWED: Judgement = Object.freeze({ ...BY_SCOPES, by: 'default' });
const DEFAULT_DENIED: Judgement = Object.freeze({ ...BY_SCOPES, decision: deny('policy_denied'), by: 'default' });
const outcome = (decision: Allow | Denial, by: Judgement['by']): Judgement => ({ decision, by, rule: undefined, condition: undefined, fault: undefined });

/**
 * decide() with what decided it: the one code path the gateway, `policy test` and `policy explain`
 * share. `notes`, when given (explain), collects the entries that met the call without deciding it.
 */
export function judge(principal: Principal, upstream: UpstreamConfig, call: Call, notes?: string[]): Judgement {
  if (upstream.clients !== undefined && (principal.clientId === undefined || !upstream.clients.has(principal.clientId))) {
    return outcome(deny('client_not_allowed'), 'clients');
  }
  for (const scope of upstream.scopes) {
    // MCP 2025-11-25 "Scope challenge handling": name every scope this request needs.
    if (!principal.scopes.has(scope)) return outcome(deny('insufficient_scope', upstream.scopes), 'scopes');
  }
  if (call.kind === 'http') return BY_SCOPES;
  const target = call.name ?? call.uri;
  // Also for names from an upstream's listing (filter.ts): what cannot be judged is not shown.
  if (target !== undefined && !nameIsSound(target)) return outcome(deny('name_invalid'), 'name');
  const method = judged(call.method, fold);
  const name = call.name !== undefined ? judged(call.name, fold) : call.uri !== undefined ? judged(call.uri, foldUri) : undefined;
  for (const rule of upstream.rules) {
    const f = fits(rule, call.method, method, name);
    if (f === 'none') continue;
    if (rule.condition !== undefined) {
      const holds = condition(rule, principal, upstream, call);
      if (holds === false) {
        notes?.push(`${rule.source}: condition ${rule.condition.id} is false, the entry does not apply`);
        continue;
      }
      if (holds !== true) return { decision: deny('condition_error'), by: 'rule', rule: rule.source, condition: rule.condition.id, fault: holds };
    }
    const refusal = restriction(principal, upstream, rule);
    if (refusal !== undefined) return { decision: refusal, by: 'rule', rule: rule.source, condition: rule.condition?.id, fault: undefined };
    if (f === 'exact') return { decision: { kind: 'allow', rule: rule.source }, by: 'rule', rule: rule.source, condition: rule.condition?.id, fault: undefined };
    notes?.push(`${rule.source}: met only in normalised form, so it restricts and does not allow; the search goes on`);
  }
  if (HOUSEKEEPING.has(call.method)) return HOUSEKEEPING_ALLOWED;
  return upstream.defaultAction === 'allow' ? DEFAULT_ALLOWED : DEFAULT_DENIED;
}

/**
 * Whether the rule's condition holds for this call. A listing item has no arguments yet: a condition
 * that reads `args` then counts as holding when the entry would let this caller through (the tool is
 * shown; each call is judged with its arguments) and as not holding when it would refuse (deny,
 * claims, scopes: other arguments may not meet it), so a tool is shown when some call may be allowed.
 */
function condition(rule: PolicyRule, principal: Principal, upstream: UpstreamConfig, call: Extract<Call, { kind: 'rpc' }>): ReturnType<NonNullable<PolicyRule['condition']>['evaluate']> {
  const c = rule.condition as NonNullable<PolicyRule['condition']>;
  if (call.listing === true && c.readsArgs) return restriction(principal, upstream, rule) === undefined;
  return c.evaluate({
    args: call.args ?? EMPTY_ARGS,
    claims: principal.claims,
    tool: call.method === 'tools/call' ? call.name ?? '' : '',
    method: call.method,
    upstream: upstream.name,
  });
}

const EMPTY_ARGS = Object.freeze({});

function judged(literal: string, normalise: (s: string) => string): JudgedName {
  return { literal, folded: normalise(literal) };
}

/** The rule's refusal of this principal (deny, claims, then scopes), or undefined when it lets it pass. */
function restriction(principal: Principal, upstream: UpstreamConfig, rule: PolicyRule): Denial | undefined {
  if (rule.deny) return deny('policy_denied');
  if (rule.claims !== undefined) {
    for (const [claim, accepted] of rule.claims) if (!claimMatches(principal.claims[claim], accepted)) return deny('policy_denied');
  }
  for (const scope of rule.scopes) {
    // Step-up hint: the scopes already required plus the rule's, so the client keeps what it has.
    if (!principal.scopes.has(scope)) return deny('insufficient_scope', [...new Set([...upstream.scopes, ...rule.scopes])]);
  }
  return undefined;
}

/** How the rule meets the call: the weaker of its method's and its target's fit. */
function fits(rule: PolicyRule, literalMethod: string, method: JudgedName, name: JudgedName | undefined): Fit {
  const m = rule.method(method);
  if (m === 'none' || rule.target === undefined) return m;
  // Which member carries the target is fixed by the exact method (jsonrpc.ts refuses loose spellings of it).
  const wanted = rule.target.kind === 'tool' ? 'tools/call' : rule.target.kind === 'prompt' ? 'prompts/get' : 'resources/read';
  if (literalMethod !== wanted || name === undefined) return 'none';
  const t = rule.target.match(name);
  if (t === 'none') return 'none';
  return m === 'exact' && t === 'exact' ? 'exact' : 'folded';
}

/** A claim matches when it is (or, as an array, contains) one of the accepted string values. */
function claimMatches(value: unknown, accepted: ReadonlySet<string>): boolean {
  if (typeof value === 'string') return accepted.has(value);
  if (Array.isArray(value)) return value.some((v) => typeof v === 'string' && accepted.has(v));
  return false;
}

// Methods that name a prompt (by name) or a resource (by URI) without getting or reading it.
const IMPLIED: ReadonlyMap<string, { readonly byName: string; readonly byUri: string }> = new Map([
  ['completion/complete', { byName: 'prompts/get', byUri: 'resources/read' }],
  ['resources/subscribe', { byName: 'resources/read', byUri: 'resources/read' }],
  ['resources/unsubscribe', { byName: 'resources/read', byUri: 'resources/read' }],
]);

type Judgeable = { readonly method: string; readonly name: string | undefined; readonly uri: string | undefined; readonly args?: unknown; readonly id: string | number | null };

/** Every message of a request body; the first denial refuses the whole request (no partial forwarding). */
export function decideAll<M extends Judgeable>(principal: Principal, upstream: UpstreamConfig, messages: readonly M[]): { readonly allow: Allow } | { readonly denial: Denial; readonly message: M } {
  const { judgement, message } = judgeAll(principal, upstream, messages);
  const d = judgement.decision;
  return d.kind === 'allow' || message === undefined ? { allow: d as Allow } : { denial: { ...d, rpcId: message.id }, message };
}

/** decideAll with what decided: the first denial and its message, else the first message's allowing. */
export function judgeAll<M extends Judgeable>(principal: Principal, upstream: UpstreamConfig, messages: readonly M[]): { readonly judgement: Judgement; readonly message: M | undefined } {
  let first: Judgement | undefined;
  for (const m of messages) {
    // A call that names a prompt or resource by another method (an argument completion, a
    // subscription) may only name what the caller could get or read.
    const implied = IMPLIED.get(m.method);
    if (implied !== undefined && (m.name !== undefined || m.uri !== undefined)) {
      const primary = judge(principal, upstream, { kind: 'rpc', method: m.uri === undefined ? implied.byName : implied.byUri, name: m.name, uri: m.uri, args: m.args });
      if (primary.decision.kind === 'deny') return { judgement: primary, message: m };
    }
    const j = judge(principal, upstream, { kind: 'rpc', method: m.method, name: m.name, uri: m.uri, args: m.args });
    if (j.decision.kind === 'deny') return { judgement: j, message: m };
    first ??= j;
  }
  return { judgement: first ?? BY_SCOPES, message: undefined };
}
