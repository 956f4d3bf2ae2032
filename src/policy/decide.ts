import type { UpstreamConfig } from '../config/compile.ts';
import type { Principal } from '../auth/principal.ts';
import { deny, type Denial } from '../reasons.ts';
import type { Fit, JudgedName, PolicyRule } from './compile.ts';
import { fold, foldUri, nameIsSound } from './names.ts';

export interface Allow {
  readonly kind: 'allow';
  /** The rule that allowed it, for the audit log; undefined = upstream scopes / default. */
  readonly rule: string | undefined;
}

/** What the request asks the upstream to do. */
export type Call =
  | { readonly kind: 'http' } // GET stream or DELETE: no JSON-RPC body to judge
  | { readonly kind: 'rpc'; readonly method: string; readonly name?: string | undefined; readonly uri?: string | undefined };

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
 *    (NFKC, case-folded: SC-188), refuses by deny, claims or scopes; its allowing needs an exact fit,
 *    so a rule met only by the normalised form restricts and the search goes on
 * 4. no rule allowed it: housekeeping allowed; otherwise the upstream's default (allow | deny)
 */
export function decide(principal: Principal, upstream: UpstreamConfig, call: Call): Allow | Denial {
  if (upstream.clients !== undefined && (principal.clientId === undefined || !upstream.clients.has(principal.clientId))) {
    return deny('client_not_allowed');
  }
  for (const scope of upstream.scopes) {
    // MCP 2025-11-25 "Scope challenge handling": name every scope this request needs.
    if (!principal.scopes.has(scope)) return deny('insufficient_scope', upstream.scopes);
  }
  if (call.kind === 'http') return ALLOW_BY_SCOPES;
  const target = call.name ?? call.uri;
  // Also for names from an upstream's listing (filter.ts): what cannot be judged is not shown.
  if (target !== undefined && !nameIsSound(target)) return deny('name_invalid');
  const method = judged(call.method, fold);
  const name = call.name !== undefined ? judged(call.name, fold) : call.uri !== undefined ? judged(call.uri, foldUri) : undefined;
  for (const rule of upstream.rules) {
    const f = fits(rule, call.method, method, name);
    if (f === 'none') continue;
    const refusal = restriction(principal, upstream, rule);
    if (refusal !== undefined) return refusal;
    if (f === 'exact') return { kind: 'allow', rule: rule.source };
  }
  return HOUSEKEEPING.has(call.method) || upstream.defaultAction === 'allow' ? ALLOW_BY_SCOPES : deny('policy_denied');
}

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

/** Every message of a request body; the first denial refuses the whole request (no partial forwarding). */
export function decideAll(principal: Principal, upstream: UpstreamConfig, messages: readonly { readonly method: string; readonly name: string | undefined; readonly uri: string | undefined; readonly id: string | number | null }[]): { readonly allow: Allow } | { readonly denial: Denial; readonly message: (typeof messages)[number] } {
  let first: Allow | undefined;
  for (const m of messages) {
    // A call that names a prompt or resource by another method (an argument completion, a
    // subscription) may only name what the caller could get or read.
    const implied = IMPLIED.get(m.method);
    if (implied !== undefined && (m.name !== undefined || m.uri !== undefined)) {
      const primary = decide(principal, upstream, { kind: 'rpc', method: m.uri === undefined ? implied.byName : implied.byUri, name: m.name, uri: m.uri });
      if (primary.kind === 'deny') return { denial: { ...primary, rpcId: m.id }, message: m };
    }
    const d = decide(principal, upstream, { kind: 'rpc', method: m.method, name: m.name, uri: m.uri });
    if (d.kind === 'deny') return { denial: { ...d, rpcId: m.id }, message: m };
    first ??= d;
  }
  return { allow: first ?? ALLOW_BY_SCOPES };
}
