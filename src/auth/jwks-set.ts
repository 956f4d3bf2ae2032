import type { JWK } from 'jose';

// What a fetched JWK Set may contribute: the structural rules of RFC 7517 and the issuer's algorithms.

const KEY_TYPES = new Set(['RSA', 'EC', 'OKP']);

/** A fetched set with nothing this issuer may verify with: a failed fetch, not a rotation to nothing. */
export class UnusableSet extends Error {
  readonly result: 'invalid_shape' | 'no_usable_key';
  constructor(result: UnusableSet['result'], message: string) {
    super(message);
    this.name = 'UnusableSet';
    this.result = result;
  }
}

/** RFC 7517 §5: keep only asymmetric signing keys with a kid that fit the issuer's algorithms. */
export function usableKeys(body: unknown, allowed: readonly string[] | undefined): JWK[] | undefined {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { keys?: unknown }).keys)) return undefined;
  const algorithms = new Set(allowed);
  const out: JWK[] = [];
  for (const key of (body as { keys: unknown[] }).keys) {
    if (typeof key !== 'object' || key === null || Array.isArray(key)) continue;
    const k = key as JWK & { d?: unknown; key_ops?: unknown };
    if (typeof k.kid !== 'string' || k.kid.length === 0 || k.kid.length > 256) continue;
    if (typeof k.kty !== 'string' || !KEY_TYPES.has(k.kty)) continue; // oct and unknown types: never
    if (k.d !== undefined) continue; // a private key published by mistake is not trusted either
    if (k.use !== undefined && k.use !== 'sig') continue;
    // A key without `alg` still verifies only the algorithms of its type (RFC 7518 §3.1): an ES256-only
    // set is no key at all for an RS256 allow-list (issue 24: ready with 0 usable keys before).
    if (!keyAlgorithms(k).some((alg) => algorithms.has(alg))) continue;
    if (k.key_ops !== undefined && !(Array.isArray(k.key_ops) && k.key_ops.includes('verify'))) continue;
    out.push(k);
  }
  return out;
}

/** The JWS algorithms a key may verify: its `alg`, else those its type and curve allow. */
export function keyAlgorithms(k: JWK): readonly string[] {
  if (k.alg !== undefined) return fitsType(k, k.alg) ? [k.alg] : [];
  if (k.kty === 'RSA') return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
  if (k.kty === 'EC') return EC_ALG[String(k.crv)] === undefined ? [] : [EC_ALG[String(k.crv)] as string];
  if (k.kty === 'OKP' && (k.crv === 'Ed25519' || k.crv === 'Ed448')) return k.crv === 'Ed25519' ? ['EdDSA', 'Ed25519'] : ['EdDSA'];
  return [];
}

const EC_ALG: Readonly<Record<string, string>> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' };

function fitsType(k: JWK, alg: string): boolean {
  if (/^(?:RS|PS)(?:256|384|512)$/.test(alg)) return k.kty === 'RSA';
  if (/^ES(?:256|384|512)$/.test(alg)) return k.kty === 'EC' && EC_ALG[String(k.crv)] === alg;
  if (alg === 'EdDSA' || alg === 'Ed25519') return k.kty === 'OKP';
  return false;
}

/** Why a set gave no usable key, in the operator's terms: what is allowed against what is published. */
export function noUsableKeyMessage(body: unknown, allowed: readonly string[] | undefined): string {
  const keys = (body as { keys?: unknown }).keys as unknown[];
  const published = new Set<string>();
  for (const key of keys) {
    if (typeof key === 'object' && key !== null) for (const alg of keyAlgorithms(key as JWK)) published.add(alg);
  }
  const list = published.size === 0 ? 'none' : [...published].slice(0, 12).join(', ');
  return `no usable signing key for the allowed algorithms ${(allowed ?? []).join(', ')} (the set has ${keys.length} key(s), for: ${list})`;
}

/** Honour the server's max-age within [min(configured, 60 s), configured]. */
export function effectiveMaxAge(serverSeconds: number | undefined, configured: number): number {
  if (serverSeconds === undefined) return configured;
  return Math.min(configured, Math.max(serverSeconds, Math.min(configured, 60)));
}
