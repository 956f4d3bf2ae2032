import { createHash, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

/** A small RFC 9449 client on jose: a key pair, its thumbprint, and proofs made with it. */
export interface DpopKey {
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly privateJwk: JWK;
  /** RFC 7638 thumbprint: the token's cnf.jkt. */
  readonly jkt: string;
}

export async function dpopKey(alg = 'ES256'): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { alg, privateKey, publicJwk, privateJwk: await exportJWK(privateKey), jkt: await calculateJwkThumbprint(publicJwk) };
}

/** RFC 9449 §7.1 ath: base64url SHA-256 of the access token. */
export function athOf(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export interface ProofOptions {
  readonly htm: string;
  readonly htu: string;
  /** The token the proof is for (ath); undefined = no ath claim. */
  readonly token: string | undefined;
  readonly iat?: number;
  readonly jti?: string;
  readonly nonce?: string;
  /** Replaces members of the protected header (typ, alg, jwk). */
  readonly header?: Record<string, unknown>;
  /** Replaces or removes (undefined) claims. */
  readonly claims?: Record<string, unknown>;
}

/** A DPoP proof JWT (RFC 9449 §4.2): typ dpop+jwt, the public jwk in the header, signed with the key. */
export function proofFor(key: DpopKey, options: ProofOptions): Promise<string> {
  const claims: Record<string, unknown> = {
    htm: options.htm,
    htu: options.htu,
    iat: options.iat ?? Math.floor(Date.now() / 1000),
    jti: options.jti ?? randomUUID(),
    ...(options.token === undefined ? {} : { ath: athOf(options.token) }),
    ...(options.nonce === undefined ? {} : { nonce: options.nonce }),
    ...options.claims,
  };
  return new SignJWT(claims)
    .setProtectedHeader({ typ: 'dpop+jwt', alg: key.alg, jwk: key.publicJwk, ...options.header } as { alg: string })
    .sign(key.privateKey);
}
