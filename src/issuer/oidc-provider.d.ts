// oidc-provider ships no type definitions and @types/oidc-provider is not a dependency, so this
// file declares the narrow surface src/issuer uses, typed from oidc-provider 9.13's lib/ sources.
// Anything not declared here is deliberately not used.

declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  /** The Koa context oidc-provider hands to helpers; only the route and the rotated token are read. */
  export interface ProviderContext {
    /** Koa's Node request (its socket is the TLS one on the mTLS listener). */
    readonly req?: IncomingMessage;
    readonly oidc?: {
      readonly route?: string;
      /** The authenticated client (at RFC 7592 management: the one being updated). */
      readonly client?: ProviderClient;
      readonly entities: { readonly RotatedRefreshToken?: { readonly remainingTTL: number } };
    };
  }

  /** The parts of oidc-provider's Client model that the helpers read. */
  export interface ProviderClient {
    readonly clientId: string;
    readonly clientAuthMethod: string;
    readonly redirectUris: readonly string[];
    readonly grantTypes: readonly string[];
    readonly scope?: string;
    grantTypeAllowed(grantType: string): boolean;
  }

  /** An access token (or client-credentials token) as the ttl helpers see it. */
  export interface ProviderToken {
    readonly resourceServer?: object;
  }

  /** What features.resourceIndicators.getResourceServerInfo returns (lib/helpers/configuration_result.js). */
  export interface ResourceServerInfo {
    readonly scope: string;
    readonly audience?: string;
    readonly accessTokenTTL?: number;
    readonly accessTokenFormat?: 'opaque' | 'jwt';
    readonly jwt?: { readonly sign: { readonly alg: string; readonly kid?: string } };
  }

  export interface ProviderAccount {
    readonly accountId: string;
    claims(): Promise<{ readonly sub: string }>;
  }

  export type Ttl = number | ((ctx: ProviderContext, token: ProviderToken, client: ProviderClient) => number);

  /** Adapter factory as accepted by the `adapter` option (a plain, non-async function). */
  export type AdapterFactory = (model: string) => object;

  export interface PrivateJwk {
    readonly kty: string;
    readonly kid: string;
    readonly alg: string;
    readonly use: 'sig';
    readonly [member: string]: unknown;
  }

  export interface StaticClientMetadata {
    readonly client_id: string;
    readonly client_secret?: string;
    readonly grant_types: readonly string[];
    readonly response_types: readonly string[];
    readonly redirect_uris?: readonly string[];
    readonly scope?: string;
    readonly token_endpoint_auth_method?: string;
    readonly jwks?: { readonly keys: readonly Readonly<Record<string, unknown>>[] };
    readonly jwks_uri?: string;
    readonly token_endpoint_auth_signing_alg?: string;
    readonly tls_client_certificate_bound_access_tokens?: boolean;
  }

  export interface ProviderConfiguration {
    readonly clockTolerance: number;
    /** Members added to the discovery document. */
    readonly discovery?: Readonly<Record<string, unknown>>;
    /** Every outbound fetch; `options.dispatcher` is oidc-provider's special-use address guard. */
    readonly fetch: (url: string | URL, options: RequestInit & { dispatcher?: unknown }) => Promise<Response>;
    readonly adapter: AdapterFactory;
    readonly jwks: { readonly keys: readonly PrivateJwk[] };
    readonly clients: readonly StaticClientMetadata[];
    readonly clientDefaults: Readonly<Record<string, unknown>>;
    readonly clientBasedCORS: (ctx: ProviderContext, origin: string, client: ProviderClient) => boolean;
    readonly cookies: { readonly keys: readonly string[] };
    readonly enabledJWA: Readonly<Record<string, readonly string[]>>;
    readonly extraClientMetadata: {
      readonly properties: readonly string[];
      /** Runs on every client, registered or static, with the metadata after defaults (synchronous). */
      readonly validator: (ctx: ProviderContext | undefined, key: string, value: unknown, metadata: Record<string, unknown>) => void;
    };
    readonly features: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
    readonly issueRefreshToken: (ctx: ProviderContext, client: ProviderClient, code: object) => Promise<boolean>;
    readonly expiresWithSession: (ctx: ProviderContext, source: object) => Promise<boolean>;
    readonly rotateRefreshToken: boolean;
    readonly findAccount: (ctx: ProviderContext, sub: string) => Promise<ProviderAccount>;
    readonly interactions: { readonly url: (ctx: ProviderContext, interaction: { readonly uid: string }) => Promise<string> };
    readonly pkce: { readonly required: (ctx: ProviderContext, client: ProviderClient) => boolean };
    readonly renderError: (ctx: ProviderContext & { type: string; body: unknown }, out: Readonly<Record<string, string>>, error: Error) => Promise<void>;
    readonly responseTypes: readonly string[];
    readonly scopes: readonly string[];
    readonly ttl: Readonly<Record<string, Ttl>>;
  }

  export interface InteractionDetails {
    readonly uid: string;
    readonly prompt: {
      readonly name: string;
      readonly details: {
        readonly missingOIDCScope?: readonly string[];
        readonly missingOIDCClaims?: readonly string[];
        readonly missingResourceScopes?: Readonly<Record<string, readonly string[]>>;
      };
    };
    readonly params: Readonly<Record<string, unknown>>;
    readonly session?: { readonly accountId?: string };
    readonly grantId?: string;
  }

  export type InteractionResult =
    | { readonly login: { readonly accountId: string } }
    | { readonly consent: { readonly grantId: string } }
    | { readonly error: string; readonly error_description: string };

  export interface Grant {
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: readonly string[]): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  }

  export interface GrantModel {
    new (properties: { readonly accountId: string; readonly clientId: string }): Grant;
    find(id: string): Promise<Grant | undefined>;
  }

  /** The token endpoint's context as a registered grant handler sees it. */
  export interface GrantContext extends ProviderContext {
    readonly oidc: {
      readonly params: Readonly<Record<string, unknown>>;
      readonly client: ProviderClient;
      entity(name: string, value: object): void;
      readonly entities: { readonly RotatedRefreshToken?: { readonly remainingTTL: number } };
    };
    body: unknown;
  }

  export interface ClientCredentialsToken {
    resourceServer: object | undefined;
    save(): Promise<string>;
  }

  export class Provider {
    registerGrantType(name: string, handler: (ctx: GrantContext) => Promise<void>, parameters: readonly string[], duplicates: readonly string[]): void;
    readonly ClientCredentials: new (properties: { readonly client: ProviderClient; readonly scope: string; readonly expiresIn: number }) => ClientCredentialsToken;
    readonly ResourceServer: new (identifier: string, info: ResourceServerInfo) => object;
    constructor(issuer: string, configuration: ProviderConfiguration);
    /** Koa's switch to trust X-Forwarded-* headers. */
    proxy: boolean;
    /** RFC 7009 revocation (and refresh token reuse) ended a grant; ctx names the token it started from. */
    on(event: 'grant.revoked', listener: (ctx: { readonly oidc?: { readonly entities: Readonly<Record<string, { readonly accountId?: string; readonly clientId?: string } | undefined>> } }, grantId: string) => void): this;
    /** RFC 7592 §2.3: a client deleted itself. */
    on(event: 'registration_delete.success', listener: (ctx: unknown, client: ProviderClient) => void): this;
    readonly issuer: string;
    readonly Grant: GrantModel;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: InteractionResult,
      options?: { readonly mergeWithLastSubmission?: boolean },
    ): Promise<void>;
  }

  export class OIDCProviderError extends Error {
    readonly status: number;
    readonly error: string;
    readonly error_description?: string;
  }

  export const errors: {
    readonly OIDCProviderError: typeof OIDCProviderError;
    readonly InvalidTarget: new (description?: string) => OIDCProviderError;
    readonly InvalidClientMetadata: new (description: string) => OIDCProviderError;
    readonly InvalidGrant: new (description: string) => OIDCProviderError;
    readonly InvalidRequest: new (description: string) => OIDCProviderError;
    readonly InvalidScope: new (description: string) => OIDCProviderError;
    readonly TemporarilyUnavailable: new (description: string) => OIDCProviderError;
  };
}

declare module 'oidc-provider/lib/adapters/memory_adapter.js' {
  import type { AdapterFactory } from 'oidc-provider';

  /** A fresh in-memory store per call, unlike the module-global default adapter. */
  export function createMemoryAdapter(clockTolerance?: number): AdapterFactory;
}
