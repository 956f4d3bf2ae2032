import type { JWTPayload } from 'jose';

/** The verified caller. Only ever built from a token that passed every check. */
export interface Principal {
  /** Configured issuer name and exact `iss`. */
  readonly issuerName: string;
  readonly iss: string;
  readonly sub: string;
  readonly clientId: string | undefined;
  readonly scopes: ReadonlySet<string>;
  readonly exp: number;
  readonly jti: string | undefined;
  /** SHA-256 of the token (hex), for cache keys; the token itself is never kept. */
  readonly tokenHash: string;
  readonly claims: Readonly<JWTPayload>;
}
