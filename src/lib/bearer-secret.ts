import { hash, timingSafeEqual } from 'node:crypto';

/** The digest a shared bearer secret is kept as: the secret itself is never held for comparison. */
export function secretDigest(secret: string): Buffer {
  return hash('sha256', secret, 'buffer');
}

/** `Authorization: Bearer <secret>` against a digest: compared as hashes, equal length whatever was sent, so the time says nothing. */
export function bearerSecretMatches(header: string | undefined, expected: Buffer): boolean {
  const m = /^Bearer ([^\s]+)$/i.exec(header ?? '');
  return m !== null && timingSafeEqual(secretDigest(m[1] as string), expected);
}
