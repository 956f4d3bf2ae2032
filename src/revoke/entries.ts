import type { Principal } from '../auth/principal.ts';

/**
 * One revocation, as the gateway holds it (README "Revocation"). `jti` kills one token; `subject`
 * (iss + sub) and `client` (iss + client_id/azp) kill every token of that identity issued at or before
 * `issuedBeforeS` (a token without iat counts as issued before: its age cannot be told).
 */
export type Revocation =
  | { readonly kind: 'jti'; readonly iss: string; readonly jti: string; readonly expiresAtMs: number }
  | { readonly kind: 'subject'; readonly iss: string; readonly sub: string; readonly issuedBeforeS: number; readonly expiresAtMs: number }
  | { readonly kind: 'client'; readonly iss: string; readonly clientId: string; readonly issuedBeforeS: number; readonly expiresAtMs: number }
  | { readonly kind: 'grant'; readonly iss: string; readonly sub: string; readonly clientId: string; readonly issuedBeforeS: number; readonly expiresAtMs: number };

/** The map key of a revocation, or of the entry a principal would match. */
export function revocationKey(r: Revocation): string {
  switch (r.kind) {
    case 'jti':
      return `j\u0000${r.iss}\u0000${r.jti}`;
    case 'subject':
      return `s\u0000${r.iss}\u0000${r.sub}`;
    case 'client':
      return `c\u0000${r.iss}\u0000${r.clientId}`;
    case 'grant':
      return `g\u0000${r.iss}\u0000${r.sub}\u0000${r.clientId}`;
  }
}

export const jtiKey = (p: Principal): string | undefined => (p.jti === undefined ? undefined : `j\u0000${p.iss}\u0000${p.jti}`);
export const subjectKey = (p: Principal): string => `s\u0000${p.iss}\u0000${p.sub}`;
export const grantKey = (p: Principal): string | undefined => (p.clientId === undefined ? undefined : `g\u0000${p.iss}\u0000${p.sub}\u0000${p.clientId}`);
export const clientKey = (p: Principal): string | undefined => (p.clientId === undefined ? undefined : `c\u0000${p.iss}\u0000${p.clientId}`);

/**
 * How long an entry must live: until no token it can affect can still be valid. A token issued at or
 * before T lives at most T + maxTokenLifetimeSeconds (the gateway refuses longer ones) plus the skew.
 */
export function expiryOf(issuedBeforeS: number, maxTokenLifetimeSeconds: number, clockSkewSeconds: number): number {
  return (issuedBeforeS + maxTokenLifetimeSeconds + clockSkewSeconds) * 1000;
}
