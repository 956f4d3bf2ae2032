import { hash } from 'node:crypto';
import { errors, jwtVerify, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { decodeUnverified, hasCanonicalSignature } from './jws.ts';
import type { IssuerConfig, UpstreamConfig } from '../config/compile.ts';
import { deny, type Denial, type Reason } from '../reasons.ts';
import { KeysUnavailable, KeyUnknown, type IssuerKeys } from './keys.ts';
import { principalFrom, type Principal } from './principal.ts';
import type { TokenCache } from './token-cache.ts';
import { timeClaimsProblem } from './time-claims.ts';
import { typAccepted } from './typ.ts';
import type { Introspector } from './introspect.ts';

export interface Authenticator {
  /** Synchronous for a cached token whose issuer's keys are usable: the warm path awaits nothing. */
  (token: string, upstream: UpstreamConfig): Principal | Denial | Promise<Principal | Denial>;
}

export interface AuthenticatorDeps {
  readonly keys: ReadonlyMap<string, IssuerKeys>;
  readonly cache: TokenCache;
  readonly introspect: Introspector;
  readonly now: () => number;
}

/**
 * Token → Principal for one upstream. The checks run cheapest first (STYLE rule 6): syntax, header
 * (typ included), issuer selection, algorithm and the time claims before any key is fetched; jose then
 * verifies the signature and the registered claims; principalFrom checks the claims jose leaves alone.
 */
export function createAuthenticator(deps: AuthenticatorDeps): Authenticator {
  const verify = createVerification(deps);
  return function authenticate(token, upstream) {
    const tokenHash = hash('sha256', token, 'hex');
    const nowMs = deps.now();
    const cached = deps.cache.get(tokenHash, upstream.name, nowMs);
    if (cached === undefined) return verify(token, tokenHash, nowMs, upstream);
    // A verified token is only as good as its issuer's keys: past the stale window, fail closed too
    // (after waiting for a recovery fetch in flight, as an uncached token does).
    const keys = deps.keys.get(cached.issuerName);
    if (keys === undefined) return deny('jwks_unavailable');
    if (keys.usable()) return cached;
    return keys.recovered().then((recovered) => (recovered ? cached : deny('jwks_unavailable')));
  };
}

type Verification = (token: string, tokenHash: string, nowMs: number, upstream: UpstreamConfig) => Promise<Principal | Denial>;

/** A token not in the cache: judged from its syntax up to jose's signature check, then cached. */
function createVerification(deps: AuthenticatorDeps): Verification {
  return async function verify(token, tokenHash, nowMs, upstream) {
    if (!token.includes('.')) {
      // Opaque token (RFC 6750 b64token, not a JWS): only an issuer with RFC 7662 introspection can vouch for it.
      const introspecting = upstream.issuers.find((i) => i.introspection !== undefined);
      if (introspecting === undefined) return deny('token_malformed');
      return deps.introspect(token, tokenHash, introspecting, upstream);
    }
    if (!hasCanonicalSignature(token)) return deny('token_malformed');
    const decoded = decodeUnverified(token);
    if (decoded === undefined) return deny('token_malformed'); // RFC 7519 §7.2 steps 1-10 (SC-004..009)
    const { header, claims: unverified } = decoded;
    const headerProblem = headerProblemOf(header);
    if (headerProblem !== undefined) return deny(headerProblem);
    // RFC 8725 §3.8: the token's iss picks the issuer (and so the only JWKS) before any key is used.
    const issuer = upstream.issuers.find((i) => i.issuer === unverified.iss);
    if (issuer === undefined) return deny('iss_unknown');
    if (issuer.introspection !== undefined) return deps.introspect(token, tokenHash, issuer, upstream);
    // RFC 8725 §3.1: the issuer's allow-list, checked before any key fetch.
    if (!issuer.algorithms.includes(header.alg as string)) return deny('alg_not_allowed');
    if (!typAccepted(header.typ, issuer.typ)) return deny('typ_invalid'); // RFC 9068 §4, when required
    const timeProblem = timeClaimsProblem(unverified, issuer, Math.floor(nowMs / 1000));
    if (timeProblem !== undefined) return deny(timeProblem);
    const keys = deps.keys.get(issuer.name);
    if (keys === undefined) return deny('internal_error');

    const removals = keys.removals;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys.resolve, verifyOptions(issuer, upstream, nowMs)));
    } catch (err) {
      return deny(reasonFor(err));
    }

    const principal = principalFrom(payload, issuer, tokenHash, header.kid);
    if (principal === undefined) return deny('claims_invalid');
    // Keys that left the set while jose verified had their cached tokens dropped before this entry
    // existed: caching it now would keep a removed key's token past its removal (accepted once, as a
    // request a moment earlier would have been; the next one is judged against the new set).
    if (keys.removals === removals) deps.cache.set(tokenHash, upstream.name, principal, validUntilMs(payload, issuer), header.kid);
    return principal;
  };
}

/** The protected header, judged before any issuer or key is looked at. */
function headerProblemOf(header: ProtectedHeaderParameters): Reason | undefined {
  // RFC 7515 §4.1.1: alg is a case-sensitive string; RFC 7797: JWTs never use b64:false (SC-011).
  if (typeof header.alg !== 'string' || header.b64 === false) return 'token_malformed';
  if (header.kid !== undefined && (typeof header.kid !== 'string' || header.kid.length > 256)) return 'token_malformed';
  // RFC 8725 §3.11: a JWT of another explicit type (our own assertion, a logout or ID token) never
  // authenticates, whatever the issuer.
  if (!typAccepted(header.typ, undefined)) return 'typ_invalid';
  return undefined;
}

function verifyOptions(issuer: IssuerConfig, upstream: UpstreamConfig, nowMs: number): Parameters<typeof jwtVerify>[2] {
  return {
    issuer: issuer.issuer, // RFC 9068 §4: exact match
    audience: upstream.audience, // RFC 8707 §2 / MCP: this upstream's own resource URI, nothing else
    algorithms: [...issuer.algorithms],
    clockTolerance: issuer.clockSkewSeconds,
    // RFC 9068 §2.2: iss, exp, aud, sub are required (jose checks exp only when present: SC-054).
    requiredClaims: ['iss', 'aud', 'exp', 'sub'],
    ...(issuer.maxTokenAgeSeconds === undefined ? {} : { maxTokenAge: issuer.maxTokenAgeSeconds }),
    ...(issuer.typ === undefined ? {} : { typ: issuer.typ }),
    currentDate: new Date(nowMs),
  };
}

function validUntilMs(payload: JWTPayload, issuer: IssuerConfig): number {
  let until = ((payload.exp as number) + issuer.clockSkewSeconds) * 1000;
  if (issuer.maxTokenAgeSeconds !== undefined && typeof payload.iat === 'number') {
    until = Math.min(until, (payload.iat + issuer.maxTokenAgeSeconds + issuer.clockSkewSeconds) * 1000);
  }
  return until;
}

function reasonFor(err: unknown): Reason {
  if (err instanceof KeysUnavailable) return 'jwks_unavailable';
  if (err instanceof KeyUnknown) return 'key_unknown';
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) return 'key_unknown';
  if (err instanceof errors.JWTExpired) return err.claim === 'iat' ? 'token_too_old' : 'token_expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'aud':
        return 'aud_mismatch';
      case 'iss':
        return 'iss_unknown';
      case 'nbf':
        return 'token_not_yet_valid';
      case 'iat':
        return err.reason === 'check_failed' ? 'token_too_old' : 'claims_invalid';
      case 'typ':
        return 'typ_invalid';
      default:
        return 'claims_invalid';
    }
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'alg_not_allowed';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'signature_invalid';
  if (err instanceof errors.JWTInvalid || err instanceof errors.JWSInvalid || err instanceof errors.JOSENotSupported) return 'token_malformed';
  // Anything else (a JWK that fails to import, a key too short for its algorithm: SC-031, SC-177)
  // means the signature cannot be trusted.
  return 'signature_invalid';
}
