import { decodeJwt, decodeProtectedHeader, type JWTPayload, type ProtectedHeaderParameters } from 'jose';

/**
 * RFC 4648 §3.5: only the canonical base64url of a compact JWS's signature is accepted, so one signed
 * token has exactly one spelling (a changed pad bit in the last character would otherwise still verify).
 */
export function hasCanonicalSignature(token: string): boolean {
  const signature = token.slice(token.lastIndexOf('.') + 1);
  return Buffer.from(signature, 'base64url').toString('base64url') === signature;
}

export interface Unverified {
  readonly header: ProtectedHeaderParameters;
  readonly claims: JWTPayload;
}

/** A compact JWT's header and claims before any key is used (jose's decoders); undefined when malformed. */
export function decodeUnverified(token: string): Unverified | undefined {
  try {
    return { header: decodeProtectedHeader(token), claims: decodeJwt(token) };
  } catch {
    return undefined;
  }
}
