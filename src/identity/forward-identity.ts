import type { Principal } from '../auth/principal.ts';
import type { Config, UpstreamConfig } from '../config/compile.ts';
import { rawHeader } from '../lib/raw-header.ts';
import type { RequestContext } from '../observe/context.ts';
import { deny } from '../reasons.ts';
import type { Admitted } from '../route/admission.ts';
import type { Step } from '../stage.ts';
import { eraOf } from '../policy/era.ts';
import { protocolVersion } from '../policy/jsonrpc.ts';
import type { AssertionMinter } from './assertion.ts';
import { forwardedNames, upstreamRequestHeaders } from './request-headers.ts';
import type { SessionBinder, SessionCheck } from './session.ts';

/** The request headers the upstream receives: the client's allowed ones, then the gateway's own. */
export interface Outbound {
  readonly headers: Record<string, string | string[]>;
}

/** Synchronous when the cached assertion is reused: the warm path awaits nothing. */
export type IdentityForwarding = (ctx: RequestContext, admitted: Admitted, principal: Principal) => Step<Outbound> | Promise<Step<Outbound>>;

/**
 * The forward-identity stage: the session the client presents must be its own; the client's
 * credentials and identity-looking headers are dropped; the signed assertion and the forwarding
 * headers are added last, so a client can never set or strip them.
 */
export function createIdentityForwarding(config: Config, sessions: SessionBinder, mintAssertion: AssertionMinter): IdentityForwarding {
  const assertionHeader = config.identity.header.toLowerCase();
  const forwardedProto = config.publicUrl.protocol.slice(0, -1);
  const forwardedHost = config.publicUrl.host;
  const allowedByUpstream = new Map(config.upstreams.map((u) => [u.name, forwardedNames(u.forwardHeaders)]));
  const baseNames = forwardedNames([]);
  const outbound = (ctx: RequestContext, upstream: UpstreamConfig, principal: Principal, session: SessionCheck, lastEvent: SessionCheck, assertion: string): Outbound => {
    const { req } = ctx;
    const headers = upstreamRequestHeaders(req, allowedByUpstream.get(upstream.name) ?? baseNames);
    if (session.kind === 'bound') headers['mcp-session-id'] = session.upstreamId;
    if (lastEvent.kind === 'bound') headers['last-event-id'] = lastEvent.upstreamId;
    headers[assertionHeader] = assertion;
    if (upstream.identity.informationalHeaders) Object.assign(headers, informationalHeaders(principal));
    headers['x-request-id'] = ctx.requestId;
    headers['x-forwarded-proto'] = forwardedProto;
    headers['x-forwarded-host'] = forwardedHost;
    const remote = req.socket.remoteAddress;
    if (remote !== undefined) headers['x-forwarded-for'] = remote;
    return { headers };
  };
  return function forwardIdentity(ctx, { upstream }, principal) {
    const { req } = ctx;
    // 2026-07-28 transports "Backward Compatibility": a stateless request's Mcp-Session-Id is ignored,
    // neither checked nor forwarded (request-headers.ts never forwards the client's own).
    const version = protocolVersion(req);
    const stateless = version !== undefined && eraOf(version) === 'stateless';
    const session = stateless ? NO_SESSION : sessions.check(singleHeader(rawHeader(req, 'mcp-session-id')), principal, upstream);
    if (session.kind === 'malformed') return deny('session_invalid');
    if (session.kind === 'foreign') return deny('session_unknown');
    // Resumption is bound like the session: an event id seen by one identity cannot replay its events
    // to another, even through an upstream whose event store all sessions share.
    const lastEvent = sessions.check(singleHeader(rawHeader(req, 'last-event-id')), principal, upstream, 'event');
    if (lastEvent.kind === 'malformed' || lastEvent.kind === 'foreign') return deny('event_id_unknown');

    const assertion = mintAssertion(principal, upstream);
    if (typeof assertion === 'string') return outbound(ctx, upstream, principal, session, lastEvent, assertion);
    return assertion.then((signed) => outbound(ctx, upstream, principal, session, lastEvent, signed));
  };
}

const NO_SESSION = Object.freeze({ kind: 'none' as const });

/** A header's value when it was sent exactly once; several copies make it malformed. */
function singleHeader(found: { readonly count: number; readonly value: string | undefined }): string | undefined {
  if (found.count === 0) return undefined;
  return found.count === 1 ? found.value : '\u0000';
}

/** Plain headers beside the assertion; values outside visible ASCII are percent-encoded. */
function informationalHeaders(p: Principal): Record<string, string> {
  const safe = (v: string): string => (/^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v));
  const out: Record<string, string> = { 'x-mcp-subject': safe(p.sub), 'x-mcp-scopes': safe([...p.scopes].join(' ')) };
  if (p.clientId !== undefined) out['x-mcp-client-id'] = safe(p.clientId);
  return out;
}
