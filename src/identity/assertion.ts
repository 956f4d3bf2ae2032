import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { PairMap } from '../lib/pair-map.ts';
import type { Principal } from '../auth/principal.ts';
import type { UpstreamConfig } from '../config/compile.ts';
import type { GatewayKeys } from './keys.ts';

// JWS typ mcp-identity+jwt: the assertion can never be confused with an access token (RFC 8725 §3.11).
export { ASSERTION_TYP };

import { ASSERTION_TYP } from './upstream.ts';

export interface AssertionMinter {
  /** Synchronous when the cached assertion is reused: the warm path awaits nothing. */
  (principal: Principal, upstream: UpstreamConfig): string | Promise<string>;
}

export interface MinterOptions {
  readonly keys: GatewayKeys;
  readonly issuer: string;
  readonly ttlSeconds: number;
  readonly now: () => number;
  readonly maxEntries?: number;
}

/**
 * Signs the verified identity for one upstream: iss = the gateway, aud = that upstream only, a lifetime of
 * seconds never beyond the client token's exp — except for a token accepted within the issuer's clock
 * skew after its exp, whose assertion lives 1 s (orig_exp always carries the token's own exp).
 * Cached per (token, upstream) until half its lifetime has passed, so the hot path rarely signs.
 */
export function createAssertionMinter(options: MinterOptions): AssertionMinter {
  // By (token hash, upstream name): lib/pair-map.ts says why not one composite string.
  const cache = new PairMap<{ jwt: string; reuseUntilMs: number }>();
  const maxEntries = options.maxEntries ?? 10_000;
  const { signer } = options.keys;
  return function mint(principal, upstream) {
    const nowMs = options.now();
    const hit = cache.get(principal.tokenHash, upstream.name);
    if (hit !== undefined && hit.reuseUntilMs > nowMs) return hit.jwt;
    return sign(principal, upstream, nowMs);
  };

  async function sign(principal: Principal, upstream: UpstreamConfig, nowMs: number): Promise<string> {
    const iat = Math.floor(nowMs / 1000);
    const exp = Math.min(iat + options.ttlSeconds, principal.exp);
    const claims: Record<string, unknown> = {
      sub: principal.sub,
      scope: [...principal.scopes].join(' '),
      orig_iss: principal.iss,
      orig_exp: principal.exp,
    };
    if (principal.clientId !== undefined) claims['client_id'] = principal.clientId;
    if (principal.jti !== undefined) claims['orig_jti'] = principal.jti;
    senderClaims(principal, claims);
    // Only the claims this upstream's policy lists, and only from the verified token (SC-175).
    for (const name of upstream.identity.claims) {
      const value = principal.claims[name];
      if (value !== undefined) claims[name] = value;
    }
    // After the listed claims (lint reserves these names too): the upstream learns the request came
    // through break-glass access, and under which ticket, and can refuse or flag it.
    if (principal.breakGlass !== undefined) {
      claims['break_glass'] = true;
      claims['break_glass_ticket'] = principal.breakGlass.ticket;
    }
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: ASSERTION_TYP })
      .setIssuer(options.issuer)
      .setAudience(upstream.audience)
      .setIssuedAt(iat)
      .setExpirationTime(Math.max(exp, iat + 1))
      .setJti(randomUUID())
      .sign(signer.key);
    if (maxEntries > 0) {
      cache.evictOldest(maxEntries, 1);
      cache.set(principal.tokenHash, upstream.name, { jwt, reuseUntilMs: nowMs + ((exp - iat) * 1000) / 2 });
    }
    return jwt;
  }
}

/**
 * A cnf-bound principal gets to minting only once possession was proven (auth/sender.ts): tell the
 * upstream how (`sender`: `dpop`, `mtls`, or `dpop mtls` for a token bound both ways) and of which key or
 * certificate (RFC 9449 §6.1 jkt, RFC 8705 §3.1 x5t#S256), so it can require it. Not as `cnf`: RFC 7800
 * would then bind the assertion itself to the caller's key, which the gateway does not hold.
 */
function senderClaims(principal: Principal, claims: Record<string, unknown>): void {
  const cnf = principal.claims['cnf'] as { readonly jkt?: unknown; readonly 'x5t#S256'?: unknown } | undefined;
  const methods: string[] = [];
  if (typeof cnf?.jkt === 'string') {
    methods.push('dpop');
    claims['sender_jkt'] = cnf.jkt;
  }
  if (typeof cnf?.['x5t#S256'] === 'string') {
    methods.push('mtls');
    claims['sender_x5t#S256'] = cnf['x5t#S256'];
  }
  if (methods.length > 0) claims['sender'] = methods.join(' ');
}
