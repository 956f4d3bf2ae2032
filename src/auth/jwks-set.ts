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
    if (k.alg !== undefined && !algorithms.has(k.alg)) continue;
    if (k.key_ops !== undefined && !(Array.isArray(k.key_ops) && k.key_ops.includes('verify'))) continue;
    out.push(k);
  }
  return out;
}

/** Honour the server's max-age within [min(configured, 60 s), configured]. */
export function effectiveMaxAge(serverSeconds: number | undefined, configured: number): number {
  if (serverSeconds === undefined) return configured;
  return Math.min(configured, Math.max(serverSeconds, Math.min(configured, 60)));
}
