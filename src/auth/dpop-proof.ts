import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, EmbeddedJWK, jwtVerify, type JWK, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import type { Reason } from '../reasons.ts';
import type { DpopNonces } from './dpop-nonce.ts';

/** What one request expects of its DPoP proof; built per request by the sender stage. */
export interface ProofExpectation {
  readonly method: string;
  /** The public URL of this request (publicUrl + path), normalised by URL, without query or fragment. */
  readonly htu: string;
  /** base64url(SHA-256(access token)). */
  readonly ath: string;
  /** The token's cnf.jkt. */
  readonly jkt: string;
  readonly nowMs: number;
  readonly algorithms: ReadonlySet<string>;
  readonly maxAgeSeconds: number;
  readonly skewSeconds: number;
  readonly nonces: DpopNonces | undefined;
}

export interface AcceptedProof {
  readonly jti: string;
  readonly iat: number;
}

// RFC 7517 §6.2.2 / §6.3.2 / §6.4: members that only a private (or symmetric) key has.
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
const ASYMMETRIC_KTY = new Set(['EC', 'OKP', 'RSA']);

/**
 * RFC 9449 §4.3, in the order of that section, every check that needs no crypto first (STYLE rule 6):
 * header, claims, the key binding by thumbprint, the nonce; then jose verifies the signature with the
 * embedded key. The jti replay check comes after, in the caller, so a forged proof never fills the cache.
 */
export async function verifyProof(proof: string, expect: ProofExpectation): Promise<AcceptedProof | Reason> {
  let header: ProtectedHeaderParameters;
  let claims: JWTPayload;
  try {
    header = decodeProtectedHeader(proof);
    claims = decodeJwt(proof);
  } catch {
    return 'dpop_invalid'; // check 2: one well-formed JWT
  }
  if (header.typ !== 'dpop+jwt') return 'dpop_invalid'; // check 4 (exact, case-sensitive)
  if (typeof header.alg !== 'string' || !expect.algorithms.has(header.alg)) return 'dpop_invalid'; // check 5
  const jwk = header.jwk;
  if (!isPublicJwk(jwk)) return 'dpop_invalid'; // check 7
  const { htm, htu, iat, jti, ath } = claims as Record<string, unknown>;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) return 'dpop_invalid'; // check 3
  if (htm !== expect.method) return 'dpop_invalid'; // check 8
  if (typeof htu !== 'string' || expect.htu === '' || normalisedHtu(htu) !== expect.htu) return 'dpop_invalid'; // check 9
  if (typeof iat !== 'number' || !Number.isFinite(iat)) return 'dpop_invalid';
  const nowS = expect.nowMs / 1000;
  if (iat > nowS + expect.skewSeconds || iat < nowS - expect.maxAgeSeconds - expect.skewSeconds) return 'dpop_invalid'; // check 11
  if (ath !== expect.ath) return 'dpop_invalid'; // check 12: the proof is for this very token (§7.1)
  // Check 10 (§8): a server that requires nonces asks for one rather than judging the rest.
  if (expect.nonces !== undefined && (typeof claims['nonce'] !== 'string' || !expect.nonces.accepts(claims['nonce'], expect.nowMs))) return 'dpop_nonce_required';
  // Check 12 / §6.1: the proof's key is the key the token is bound to (RFC 7638 thumbprint).
  let thumbprint: string;
  try {
    thumbprint = await calculateJwkThumbprint(jwk, 'sha256');
  } catch {
    return 'dpop_invalid';
  }
  if (thumbprint !== expect.jkt) return 'token_binding_mismatch';
  try {
    // Check 6: the signature, by jose with the header's own key (EmbeddedJWK refuses a private one too).
    await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: [...expect.algorithms], requiredClaims: ['jti', 'htm', 'htu', 'iat'], currentDate: new Date(expect.nowMs) });
  } catch {
    return 'dpop_invalid';
  }
  return { jti, iat };
}

function isPublicJwk(jwk: unknown): jwk is JWK {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return false;
  const members = jwk as Record<string, unknown>;
  if (typeof members['kty'] !== 'string' || !ASYMMETRIC_KTY.has(members['kty'])) return false;
  return PRIVATE_MEMBERS.every((m) => members[m] === undefined);
}

/** RFC 9449 §4.3: compared after RFC 3986 syntax- and scheme-based normalisation, without query and fragment. */
export function normalisedHtu(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  url.search = '';
  url.hash = '';
  return url.href;
}
