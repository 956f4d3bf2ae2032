import { createBreakGlassJudge } from '../auth/break-glass.ts';
import type { IssuerKeys } from '../auth/keys.ts';
import type { Principal } from '../auth/principal.ts';
import type { Config } from '../config/compile.ts';
import { decide, decideAll } from '../policy/decide.ts';
import type { Reason } from '../reasons.ts';
import type { OpenStream, StreamRegistry } from './stream.ts';

// Open streams are judged again when what allowed them changes (issue 17 §5): at reload against the
// new policy, when their issuer fails closed, and when the key that verified their token leaves the
// JWKS. A stream no longer allowed ends with a final `revoked` event; the others go on untouched.

/**
 * After a reload: the upstream, its issuers, break-glass grants (a stream opened through a grant the new
 * file removed or narrowed ends), client allow-list, scopes, message rules and keys, as now configured.
 */
export function rejudgeStreams(streams: StreamRegistry, config: Config, keys: ReadonlyMap<string, IssuerKeys>, now: () => number = Date.now): number {
  const upstreams = new Map(config.upstreams.map((u) => [u.name, u]));
  const breakGlass = createBreakGlassJudge(config);
  return streams.endWhere((s) => judge(s, upstreams, keys, (p, u) => breakGlass(p, u, now()).reason));
}

function judge(s: OpenStream, upstreams: ReadonlyMap<string, Config['upstreams'][number]>, keys: ReadonlyMap<string, IssuerKeys>, breakGlass: (principal: Principal, upstream: string) => Reason | undefined): Reason | undefined {
  const upstream = upstreams.get(s.upstream);
  if (upstream === undefined) return 'route_unknown';
  if (!upstream.issuers.some((i) => i.name === s.principal.issuerName)) return 'iss_unknown';
  const glass = breakGlass(s.principal, s.upstream);
  if (glass !== undefined) return glass;
  const http = decide(s.principal, upstream, { kind: 'http' });
  if (http.kind === 'deny') return http.reason;
  const messages = s.grant?.messages ?? [];
  if (messages.length > 0) {
    const verdict = decideAll(s.principal, upstream, messages);
    if ('denial' in verdict) return verdict.denial.reason;
  }
  const issuerKeys = keys.get(s.principal.issuerName);
  if (issuerKeys === undefined) return undefined; // an introspection issuer: no key set to consult
  if (!issuerKeys.usable()) return 'jwks_unavailable';
  const kid = s.grant?.kid;
  if (kid !== undefined && !issuerKeys.hasKid(kid)) return 'key_unknown';
  return undefined;
}

/** The issuer failed closed (past its stale window): none of its streams may go on. */
export function endIssuerStreams(streams: StreamRegistry, issuerName: string): number {
  return streams.endWhere((s) => (s.principal.issuerName === issuerName ? 'jwks_unavailable' : undefined));
}

/** These keys left the issuer's JWKS: streams whose token they verified end. */
export function endKeyStreams(streams: StreamRegistry, issuerName: string, kids: ReadonlySet<string>): number {
  return streams.endWhere((s) => (s.principal.issuerName === issuerName && s.grant?.kid !== undefined && kids.has(s.grant.kid) ? 'key_unknown' : undefined));
}
