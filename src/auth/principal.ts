import type { JWTPayload } from 'jose';
import type { IssuerConfig } from '../config/compile.ts';

/** The verified caller. Only ever built from a token that passed every check. */
export interface Principal {
  /** Configured issuer name and exact `iss`. */
  readonly issuerName: string;
  readonly iss: string;
  readonly sub: string;
  readonly clientId: string | undefined;
  readonly scopes: ReadonlySet<string>;
  readonly exp: number;
  readonly jti: string | undefined;
  /** SHA-256 of the token (hex), for cache keys; the token itself is never kept. */
  readonly tokenHash: string;
  readonly claims: Readonly<JWTPayload>;
  /** The kid of the JWS that was verified (undefined for introspection): a stream ends when that key leaves the JWKS. */
  readonly kid?: string;
  /** Set by the break-glass stage only: the grant this request is admitted through. */
  readonly breakGlass?: { readonly name: string; readonly ticket: string; readonly expiresAtMs: number };
}

/**
 * Verified claims → Principal, the one place for both a JWT's payload and an RFC 7662 answer, so a
 * token cannot pass one door with claims the other would refuse. Checks the claims jose leaves alone
 * (RFC 7519 §4.1.2 StringOrURI, RFC 9068 §2.2); undefined = claims_invalid.
 */
export function principalFrom(claims: Readonly<Record<string, unknown>>, issuer: IssuerConfig, tokenHash: string, kid?: string): Principal | undefined {
  const { sub, exp, jti } = claims;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > 1024) return undefined;
  if (typeof exp !== 'number') return undefined;
  if (jti !== undefined && typeof jti !== 'string') return undefined;
  // RFC 9068 §2.2 client_id; azp (OIDC) only when client_id is absent, so azp never vouches for another client.
  const clientId = claims['client_id'] ?? claims['azp'];
  if (clientId !== undefined && (typeof clientId !== 'string' || clientId.length === 0)) return undefined;
  const scopes = scopesOf(claims, issuer.scopeClaim);
  if (scopes === undefined) return undefined;
  return Object.freeze({
    issuerName: issuer.name,
    iss: issuer.issuer,
    sub,
    clientId,
    scopes,
    exp,
    jti,
    tokenHash,
    claims: Object.freeze({ ...claims }) as Readonly<JWTPayload>,
    ...(kid === undefined ? {} : { kid }),
  });
}

/**
 * Scopes from the one claim the issuer names (config `scopeClaim`), never the union of two, so a token
 * cannot add scopes through a claim its issuer does not use; the other claim is ignored.
 * RFC 9068 §2.2.3 / RFC 6749 §3.3: `scope` is a space-delimited string. `scp` (not registered) is an
 * array of strings or, as some IdPs send it, a space-delimited string.
 */
export function scopesOf(claims: Readonly<Record<string, unknown>>, claim: 'scope' | 'scp'): ReadonlySet<string> | undefined {
  const value = claims[claim];
  if (value === undefined) return new Set();
  let list: readonly unknown[];
  if (typeof value === 'string') list = value.split(' ');
  else if (claim === 'scp' && Array.isArray(value)) list = value;
  else return undefined;
  const out = new Set<string>();
  for (const s of list) {
    if (typeof s !== 'string') return undefined;
    if (s !== '') out.add(s);
  }
  return out;
}
