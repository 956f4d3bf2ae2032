// Public types of the embedded issuer: a single-node authorization server for demos and tests.

import type { FederationOptions } from './federation/types.ts';

export type SigningAlg = 'ES256' | 'EdDSA';
export type { FederationOptions, FederationRule, TrustedPlatform } from './federation/types.ts';

/** An audience (RFC 8707 resource indicator) that tokens may be issued for, and its scopes. */
export interface IssuerResource {
  readonly audience: string;
  readonly scopes: readonly string[];
}

export interface IssuerStaticClient {
  readonly client_id: string;
  readonly client_secret?: string;
  readonly grant_types: readonly string[];
  readonly redirect_uris?: readonly string[];
  readonly scope?: string;
  readonly token_endpoint_auth_method?: string;
  /** private_key_jwt (RFC 7523 §2.2): the client's public keys, inline or at an https (or loopback) URL. */
  readonly jwks?: { readonly keys: readonly Readonly<Record<string, unknown>>[] };
  readonly jwks_uri?: string;
  readonly token_endpoint_auth_signing_alg?: string;
  /** RFC 8705 §3: tokens bound to the certificate the client presents on the mTLS listener (needs `mtls`). */
  readonly tls_client_certificate_bound_access_tokens?: boolean;
}

/**
 * RFC 8705 §5: a second listener, TLS with client certificates verified against clientCaFile, serving
 * the same issuer; its token endpoint is advertised as mtls_endpoint_aliases.token_endpoint. Tokens
 * for clients with tls_client_certificate_bound_access_tokens are bound (cnf x5t#S256) to the
 * certificate presented there; such a client gets no token on the plain listener.
 */
export interface IssuerMtlsListener {
  /** 0 picks an ephemeral port; the host is the issuer's. */
  readonly port: number;
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCaFile: string;
}

export interface IssuerOptions {
  /** Exact issuer URL; https unless its host is loopback. Omitted: http://host:actualPort (loopback host only). */
  readonly issuer?: string;
  readonly host: string;
  /** 0 picks an ephemeral port. */
  readonly port: number;
  /** Private JWKS and rotation schedule, mode 0600, created when absent. */
  readonly keysFile: string;
  /** The only audiences tokens may be issued for. */
  readonly resources: readonly IssuerResource[];
  /** Default 300, at most 3600. */
  readonly accessTokenTtlSeconds?: number;
  /** Default ES256. */
  readonly signingAlg?: SigningAlg;
  /** How long a rotated-in key is published before it signs. Default 60. */
  readonly rotationGraceSeconds?: number;
  /** Absolute lifetime of a refresh-token family (rotation never extends it). Default 86400, at most 30 days. */
  readonly refreshTokenTtlSeconds?: number;
  /**
   * RFC 7591 registration; the initial access token is required unless issuer and listener are both
   * loopback. Registered secrets expire after clientSecretTtlSeconds (default 30 days, at most 1 year).
   */
  readonly registration?: { readonly initialAccessToken?: string; readonly clientSecretTtlSeconds?: number };
  readonly clients?: readonly IssuerStaticClient[];
  /**
   * Outbound fetches (Client ID Metadata Documents, client jwks_uri) to private, link-local or
   * loopback addresses are refused, except to these hosts; caFile: the CA their certificates chain to.
   */
  readonly fetch?: { readonly privateHosts?: readonly string[]; readonly caFile?: string };
  /** Workload identity federation: platform tokens exchanged through the RFC 7523 JWT-bearer grant. */
  readonly federation?: FederationOptions;
  /** Certificate-bound access tokens (RFC 8705) through a TLS listener with client certificates. */
  readonly mtls?: IssuerMtlsListener;
  /** SSF transmitter (README "Revocation"): revocations as CAEP SETs on an RFC 8936 poll endpoint. */
  readonly ssf?: IssuerSsfOptions;
  /**
   * Clock (ms) for the key rotation schedule. oidc-provider reads Date.now() itself for token
   * iat/exp and artifact expiry and offers no hook, so this clock governs key rotation only.
   */
  readonly now?: () => number;
}

export interface RunningIssuer {
  readonly url: string;
  /** Where this instance actually listens (differs from url when the issuer URL names a front end). */
  readonly listenUrl: string;
  /** The mTLS listener (https://host:port), when `mtls` is set. */
  readonly mtlsUrl: string | undefined;
  readonly jwksUri: string;
  close(): Promise<void>;
  /** Publishes a new key now, signs with it after the grace period, drops older keys after the token lifetime. */
  rotateKeys(): Promise<void>;
  /**
   * Serves `options` from the next request on; registrations, grants, refresh tokens and keys carry
   * over. Throws a ConfigError, and keeps the running configuration, when they are invalid or change
   * a restart-only setting (issuer, listener, keys file, signing algorithm, token lifetime, grace).
   */
  reload(options: IssuerOptions): Promise<void>;
}

export interface IssuerSsfOptions {
  /** The aud of every SET: the gateways' revocation.audience. */
  readonly audience: string;
  /** Bearer secret the gateways present at /ssf/poll (their poll.authorizationFile holds the same). */
  readonly pollSecretFile: string;
  /** Bearer secret of `mcp-warden revoke` at /ssf/revoke. */
  readonly adminSecretFile: string;
  /** How long a SET stays on the stream; at least accessTokenTtlSeconds (default that + 60). */
  readonly retentionSeconds?: number;
}
