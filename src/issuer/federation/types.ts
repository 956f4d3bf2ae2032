// Public option types of workload identity federation, apart from their validation (settings.ts)
// so that the issuer's public types can name them without importing the validator.

export interface FederationRule {
  /** The platform token's `sub`; `*` matches any run of characters (e.g. system:serviceaccount:agents:*). */
  readonly subject: string;
  /** Top-level claims that must equal these strings exactly (e.g. repository, ref, kubernetes namespace). */
  readonly claims?: Readonly<Record<string, string>>;
  /** The client identity the workload acts as; tokens carry it as sub and client_id. */
  readonly clientId: string;
  readonly scopes: readonly string[];
  /** Audiences (configured resources) its tokens may be issued for. */
  readonly resources: readonly string[];
}

export interface TrustedPlatform {
  readonly name: string;
  /** Exact `iss` of the platform's tokens (a cluster's service-account issuer, a CI OIDC issuer, a SPIFFE trust domain's JWT issuer). */
  readonly issuer: string;
  /** Optional: discovered from the issuer's /.well-known/openid-configuration when absent. */
  readonly jwksUri?: string;
  readonly algorithms: readonly string[];
  /** The `aud` platform tokens must carry for this issuer. Default: this issuer's identifier. */
  readonly audience?: string;
  readonly clockSkewSeconds?: number;
  readonly jwks?: { readonly cacheMaxAgeSeconds?: number; readonly cooldownSeconds?: number; readonly staleIfErrorSeconds?: number; readonly timeoutMs?: number };
  readonly rules: readonly FederationRule[];
}

export interface FederationOptions {
  readonly trust: readonly TrustedPlatform[];
  /** Lifetime of the access tokens a workload gets. Default and maximum 300. */
  readonly tokenTtlSeconds?: number;
  /** An assertion may live at most this long (exp − iat) and expire at most this far ahead. Default and maximum 600. */
  readonly maxAssertionLifetimeSeconds?: number;
}
