import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify, type CryptoKey, type JWK, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { decodeUnverified } from './jws.ts';
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
  /** The keys of proofs already accepted, so a client's key is imported and thumbprinted once. */
  readonly keys: ProofKeys;
}

export interface AcceptedProof {
  readonly jti: string;
  readonly iat: number;
}

// RFC 7517 §6.2.2 / §6.3.2 / §6.4: members that only a private (or symmetric) key has.
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
const ASYMMETRIC_KTY = new Set(['EC', 'OKP', 'RSA']);
const MAX_PROOF_KEYS = 1_000;

interface ProofKey {
  /** RFC 7638 SHA-256 thumbprint of the jwk, a pure function of it. */
  readonly thumbprint: string;
  /** The key jose's EmbeddedJWK imported from the jwk for the header's alg. */
  readonly key: CryptoKey;
}

/**
 * Bounded cache of proof keys by `alg` and the exact jwk JSON, so a client's key is not re-imported and
 * re-thumbprinted (two async WebCrypto jobs, ~200 µs) on every request. Only what is a function of those
 * two values is kept: the thumbprint is still compared with the token's cnf.jkt and the signature still
 * verified on every request. An entry is added only once a proof with it was fully verified.
 */
export class ProofKeys {
  readonly #entries = new Map<string, ProofKey>();
  readonly #max: number;

  constructor(max: number = MAX_PROOF_KEYS) {
    this.#max = max;
  }

  get(id: string): ProofKey | undefined {
    return this.#entries.get(id);
  }

  remember(id: string, entry: ProofKey): void {
    if (this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(id, entry);
  }
}

/**
 * RFC 9449 §4.3, in the order of that section, every check that needs no crypto first (STYLE rule 6):
 * header, claims, the key binding by thumbprint, the nonce; then jose verifies the signature with the
 * embedded key. The jti replay check comes after, in the caller, so a forged proof never fills the cache.
 */
export async function verifyProof(proof: string, expect: ProofExpectation): Promise<AcceptedProof | Reason> {
  const decoded = decodeUnverified(proof);
  if (decoded === undefined) return 'dpop_invalid'; // check 2: one well-formed JWT
  const { header, claims } = decoded;
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
  const id = `${header.alg} ${JSON.stringify(jwk)}`;
  const known = expect.keys.get(id);
  const thumbprint = known?.thumbprint ?? (await thumbprintOf(jwk));
  if (thumbprint === undefined) return 'dpop_invalid';
  if (thumbprint !== expect.jkt) return 'token_binding_mismatch';
  const key = known?.key ?? (await embeddedKey(header));
  if (key === undefined) return 'dpop_invalid';
  try {
    // Check 6: the signature, by jose with the header's own key, on every request.
    await jwtVerify(proof, key, { typ: 'dpop+jwt', algorithms: [...expect.algorithms], requiredClaims: ['jti', 'htm', 'htu', 'iat'], currentDate: new Date(expect.nowMs) });
  } catch {
    return 'dpop_invalid';
  }
  if (known === undefined) expect.keys.remember(id, { thumbprint, key });
  return { jti, iat };
}

async function thumbprintOf(jwk: JWK): Promise<string | undefined> {
  try {
    return await calculateJwkThumbprint(jwk, 'sha256');
  } catch {
    return undefined;
  }
}

// jose's EmbeddedJWK: the header's jwk imported for its alg, refused if private, its `use`/`alg` members wrong.
async function embeddedKey(header: ProtectedHeaderParameters): Promise<CryptoKey | undefined> {
  try {
    return await EmbeddedJWK(header);
  } catch {
    return undefined;
  }
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
