import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Principal } from '../auth/principal.ts';
import type { UpstreamConfig } from '../config/compile.ts';

// MCP transports "Session Management": visible ASCII only (SC-148). A bound id is at most this long.
const VISIBLE_ASCII = /^[\x21-\x7e]{1,512}$/;
const MAC_LENGTH = 22; // 128 bits, base64url

export type SessionCheck =
  | { readonly kind: 'none' }
  | { readonly kind: 'bound'; readonly upstreamId: string }
  | { readonly kind: 'malformed' }
  | { readonly kind: 'foreign' };

/** What is bound: a session id (Mcp-Session-Id) or an SSE event id (Last-Event-ID). */
export type BoundKind = 'session' | 'event';

export interface SessionBinder {
  /** Client → upstream: verifies the MAC against the caller's identity and restores the upstream's id. */
  check(value: string | undefined, principal: Principal, upstream: UpstreamConfig, kind?: BoundKind): SessionCheck;
  /** Upstream → client: `<upstream-id>.<mac>` binding the id to this identity. */
  bind(upstreamId: string, principal: Principal, upstream: UpstreamConfig, kind?: BoundKind): string | undefined;
}

/**
 * Stateless session binding (MCP Security Best Practices "Session Hijacking"): the id a client sees
 * carries a keyed MAC over upstream + upstream session id + issuer + subject + client id. Another
 * identity presenting it (SC-129, SC-132) gets 404, as for an unknown session, so existence does not
 * leak. Token bytes are not in the MAC, so a session survives a normal token refresh.
 */
export function createSessionBinder(secrets: readonly Buffer[]): SessionBinder {
  // The kind is inside the MAC: a session id can never be presented as an event id, or the reverse
  // ('#' cannot start an upstream name, so the two inputs never coincide).
  const mac = (secret: Buffer, upstreamId: string, p: Principal, u: UpstreamConfig, kind: BoundKind): string =>
    createHmac('sha256', secret)
      .update([kind === 'session' ? u.name : `#event ${u.name}`, upstreamId, p.iss, p.sub, p.clientId ?? ''].join('\u0000'))
      .digest('base64url')
      .slice(0, MAC_LENGTH);
  return {
    check(value, principal, upstream, kind = 'session') {
      if (value === undefined) return { kind: 'none' };
      if (!VISIBLE_ASCII.test(value)) return { kind: 'malformed' };
      const dot = value.lastIndexOf('.');
      if (dot <= 0 || value.length - dot - 1 !== MAC_LENGTH) return { kind: 'foreign' };
      const upstreamId = value.slice(0, dot);
      const presented = Buffer.from(value.slice(dot + 1));
      for (const secret of secrets) {
        if (timingSafeEqual(presented, Buffer.from(mac(secret, upstreamId, principal, upstream, kind)))) return { kind: 'bound', upstreamId };
      }
      return { kind: 'foreign' };
    },
    bind(upstreamId, principal, upstream, kind = 'session') {
      if (!VISIBLE_ASCII.test(upstreamId) || upstreamId.length > 512 - MAC_LENGTH - 1) return undefined;
      return `${upstreamId}.${mac(secrets[0] as Buffer, upstreamId, principal, upstream, kind)}`;
    },
  };
}
