import { errors, jwtVerify, type JWTPayload } from 'jose';
import { decodeUnverified, hasCanonicalSignature } from '../auth/jws.ts';
import { KeysUnavailable, KeyUnknown, type IssuerKeys } from '../auth/keys.ts';
import type { TransmitterConfig } from '../config/compile.ts';

/** RFC 8935 §2.4 / RFC 8936 §2.4 error codes, shared by push answers and poll setErrs. */
export type SetErrorCode = 'invalid_request' | 'invalid_key' | 'invalid_issuer' | 'invalid_audience' | 'authentication_failed' | 'access_denied';

export interface VerifiedSet {
  readonly kind: 'set';
  readonly jti: string;
  readonly iat: number;
  readonly events: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly payload: Readonly<JWTPayload>;
}
export interface RefusedSet {
  readonly kind: 'refused';
  readonly err: SetErrorCode;
  readonly description: string;
}
/** The keys are unavailable right now: neither accept nor refuse, the transmitter delivers it again. */
export interface RetrySet {
  readonly kind: 'retry';
}

const MAX_SET_BYTES = 64 * 1024;
const refuse = (err: SetErrorCode, description: string): RefusedSet => ({ kind: 'refused', err, description });

/**
 * A SET, verified like a token (RFC 8417 §2.2 and §4, SSF 1.0 SET profile): cheap checks first (size, canonical
 * signature encoding, explicit typ, algorithm, issuer), then jose with the issuer's keys, exact iss and
 * this receiver's aud. A SET is never an access token and an access token is never a SET: the typ
 * `secevent+jwt` is required here and refused on the token path (typ.ts).
 */
export async function verifySet(token: string, t: TransmitterConfig, keys: IssuerKeys, audience: string, nowMs: number): Promise<VerifiedSet | RefusedSet | RetrySet> {
  if (token.length > MAX_SET_BYTES) return refuse('invalid_request', 'the SET is too large');
  const parts = token.split('.');
  if (parts.length !== 3) return refuse('invalid_request', 'the SET is not a compact JWS');
  if (!hasCanonicalSignature(token)) return refuse('invalid_request', 'the SET signature is not canonical base64url');
  const decoded = decodeUnverified(token);
  if (decoded === undefined) return refuse('invalid_request', 'the SET cannot be decoded');
  const { header, claims: unverified } = decoded;
  // RFC 8417 §2.3 / SSF 1.0 SET profile: explicit typing, so a SET cannot be replayed as another kind of JWT.
  if (!isSecevent(header.typ)) return refuse('invalid_request', 'the SET typ must be secevent+jwt');
  if (typeof header.alg !== 'string' || !t.issuer.algorithms.includes(header.alg)) return refuse('invalid_key', 'the SET algorithm is not accepted');
  // RFC 8417 §2.2 iss: the allow-list is the configured transmitter, picked before any key is used.
  if (unverified.iss !== t.issuer.issuer) return refuse('invalid_issuer', 'the SET issuer is not this transmitter');
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, keys.resolve, {
      issuer: t.issuer.issuer,
      audience, // RFC 8417 §2.2 aud: this receiver
      algorithms: [...t.issuer.algorithms],
      typ: 'secevent+jwt',
      requiredClaims: ['iss', 'aud', 'iat', 'jti', 'events'],
      clockTolerance: t.issuer.clockSkewSeconds,
      currentDate: new Date(nowMs),
    }));
  } catch (err) {
    return failure(err);
  }
  return shaped(payload, t, nowMs);
}

function isSecevent(typ: unknown): boolean {
  if (typeof typ !== 'string') return false;
  const lower = typ.toLowerCase();
  return lower === 'secevent+jwt' || lower === 'application/secevent+jwt';
}

/** The claims jose leaves alone: jti, iat not from the future, and `events` (RFC 8417 §2.2). */
function shaped(payload: JWTPayload, t: TransmitterConfig, nowMs: number): VerifiedSet | RefusedSet {
  const { jti, iat, events } = payload;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) return refuse('invalid_request', 'the SET jti is invalid');
  if (typeof iat !== 'number' || !Number.isFinite(iat) || iat > nowMs / 1000 + t.issuer.clockSkewSeconds) return refuse('invalid_request', 'the SET iat is invalid');
  // §2.2: events is a JSON object whose members are event type URIs, each with an object payload.
  if (typeof events !== 'object' || events === null || Array.isArray(events)) return refuse('invalid_request', 'the SET events claim is not an object');
  const entries = Object.entries(events as Record<string, unknown>);
  if (entries.length === 0 || entries.some(([, v]) => typeof v !== 'object' || v === null || Array.isArray(v))) return refuse('invalid_request', 'the SET events are invalid');
  return { kind: 'set', jti, iat, events: events as VerifiedSet['events'], payload };
}

function failure(err: unknown): RefusedSet | RetrySet {
  if (err instanceof KeysUnavailable) return { kind: 'retry' };
  if (err instanceof KeyUnknown || err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) return refuse('invalid_key', 'the SET signing key is not known');
  if (err instanceof errors.JWSSignatureVerificationFailed) return refuse('invalid_key', 'the SET signature is invalid');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return refuse('invalid_audience', 'the SET audience is not this receiver');
    if (err.claim === 'iss') return refuse('invalid_issuer', 'the SET issuer is not this transmitter');
    return refuse('invalid_request', `the SET ${err.claim} claim is invalid`);
  }
  if (err instanceof errors.JWTExpired) return refuse('invalid_request', 'the SET has expired');
  return refuse('invalid_key', 'the SET signature cannot be verified');
}
