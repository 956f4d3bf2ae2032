import type { UpstreamConfig } from '../config/compile.ts';
import type { Principal } from '../auth/principal.ts';
import { deny, type Denial } from '../reasons.ts';

export interface Allow {
  readonly kind: 'allow';
}

/** What the request asks the upstream to do; richer MCP call facts (method, tool) slot in here. */
export interface Call {
  readonly httpMethod: string;
}

const ALLOW: Allow = Object.freeze({ kind: 'allow' });

/**
 * Authorization as a pure function (STYLE rule 7): same inputs, same decision; no I/O.
 * 1. client allow-list (RFC 9068 client_id; confused-deputy guard, SC-067)
 * 2. the upstream's required scopes (exact, case-sensitive tokens: RFC 6749 §3.3, SC-063)
 */
export function decide(principal: Principal, upstream: UpstreamConfig, _call: Call): Allow | Denial {
  if (upstream.clients !== undefined && (principal.clientId === undefined || !upstream.clients.has(principal.clientId))) {
    return deny('client_not_allowed');
  }
  for (const scope of upstream.scopes) {
    // MCP 2025-11-25 "Scope challenge handling": name every scope this request needs.
    if (!principal.scopes.has(scope)) return deny('insufficient_scope', upstream.scopes);
  }
  return ALLOW;
}
