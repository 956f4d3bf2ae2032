import type { IssuerConfig } from '../config/compile.ts';
import type { Reason } from '../reasons.ts';

/** RFC 7519 §2 NumericDate: a finite, non-negative number of seconds (1e309 parses as Infinity). */
function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/**
 * The time claims of a JWT payload or an RFC 7662 answer, judged the same way for both. Runs on the
 * decoded payload before any key is fetched (STYLE rule 6): the verified payload is the same bytes,
 * and jose repeats the exp/nbf/maxTokenAge checks after the signature. Checks in order:
 * - exp required, nbf and iat optional, each a NumericDate (RFC 7519 §2, §4.1.4-4.1.6);
 * - exp on or before now − skew: expired (§4.1.4); nbf after now + skew: not yet valid (§4.1.5);
 * - iat after now + skew: a token from the future is not yet valid either — same client remedy
 *   (fix the clock or wait), and it is what refuses millisecond iat values;
 * - maxTokenAgeSeconds (iat then required), checked before the lifetime so the older reason wins;
 * - lifetime: exp − iat, or exp − now without iat (plus skew: the clock may be behind), at most
 *   maxTokenLifetimeSeconds. This refuses never-expiring and millisecond-exp tokens.
 */
export function timeClaimsProblem(claims: Readonly<Record<string, unknown>>, issuer: IssuerConfig, nowS: number): Reason | undefined {
  const { exp, nbf, iat } = claims;
  const skew = issuer.clockSkewSeconds;
  if (!isNumericDate(exp)) return 'claims_invalid';
  if (nbf !== undefined && !isNumericDate(nbf)) return 'claims_invalid';
  if (iat !== undefined && !isNumericDate(iat)) return 'claims_invalid';
  if (exp <= nowS - skew) return 'token_expired';
  if (nbf !== undefined && nbf > nowS + skew) return 'token_not_yet_valid';
  if (iat !== undefined && iat > nowS + skew) return 'token_not_yet_valid';
  if (issuer.maxTokenAgeSeconds !== undefined) {
    if (iat === undefined) return 'claims_invalid';
    if (nowS - iat - skew > issuer.maxTokenAgeSeconds) return 'token_too_old';
  }
  const lifetime = iat === undefined ? exp - nowS - skew : exp - iat;
  if (lifetime > issuer.maxTokenLifetimeSeconds) return 'token_lifetime_exceeded';
  return undefined;
}
