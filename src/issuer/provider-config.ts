// The oidc-provider configuration: every default that matters is set here on purpose, so the
// provider prints no "you SHOULD/MUST change this" notices and no dev-only feature is on.
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import {
  errors,
  type AdapterFactory,
  type ProviderClient,
  type ProviderConfiguration,
  type ProviderContext,
  type ProviderToken,
  type StaticClientMetadata,
} from 'oidc-provider';
import { CLIENT_POLICY_HOOK, createClientPolicy, isInteractiveOnly } from './client-policy.ts';
import { createOutboundFetch } from './outbound.ts';
import type { KeyView } from './key-ring.ts';
import type { IssuerSettings } from './options.ts';
import { createResourcePolicy, MISSING_RESOURCE, type ResourcePolicy } from './resources.ts';
import type { IssuerStaticClient } from './types.ts';

/** State that outlives one Provider instance (a key change builds a new one). */
export interface SharedProviderState {
  readonly adapter: AdapterFactory;
  readonly cookieKeys: readonly string[];
  /** RFC 8705 §5: the token endpoint on the mTLS listener, when there is one. */
  readonly mtlsTokenEndpoint?: string;
}

export const INTERACTION_PATH = '/interaction/';
/** Short-lived browser artifacts: the issuer is for demos and tests, not for long sessions. */
const BROWSER_STATE_TTL_SECONDS = 600;
const AUTHORIZATION_CODE_TTL_SECONDS = 60;
export const CLOCK_TOLERANCE_SECONDS = 5;

/** The RFC 8707 policy for tokens signed with the current key. */
export function resourcePolicyFor(settings: IssuerSettings, keys: KeyView): ResourcePolicy {
  return createResourcePolicy(settings.resources, { ttlSeconds: settings.accessTokenTtlSeconds, alg: settings.signingAlg, signingKid: keys.signingKid });
}

/** `extraClients`: clients defined by other configuration (federation rules), static like the configured ones. */
export function buildProviderConfiguration(settings: IssuerSettings, keys: KeyView, shared: SharedProviderState, extraClients: readonly StaticClientMetadata[] = []): ProviderConfiguration {
  const alg = settings.signingAlg;
  const resources = resourcePolicyFor(settings, keys);
  const resourceScopes = settings.resources.flatMap((r) => r.scopes);

  return {
    // oidc-provider's own in-memory adapter, knowingly: this issuer is single-node and its
    // grants, codes and registered clients may be lost on restart. A private store per issuer
    // (not the module-global default) keeps issuers in one process apart and survives key changes.
    adapter: shared.adapter,
    fetch: createOutboundFetch(settings.outbound),
    // Seconds of clock difference accepted on expiry checks (client secrets, client assertions).
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    jwks: { keys: keys.keys },
    clients: [...settings.clients.map(toClientMetadata), ...extraClients],
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: alg,
    },
    // Browser-based public clients may call the token endpoint from their redirect origin.
    clientBasedCORS: (_ctx, origin, client) =>
      client.clientAuthMethod === 'none' && client.redirectUris.some((uri) => URL.parse(uri)?.origin === origin),
    cookies: { keys: shared.cookieKeys },
    enabledJWA: { idTokenSigningAlgValues: [alg] },
    extraClientMetadata: {
      properties: [CLIENT_POLICY_HOOK],
      validator: createClientPolicy({ resourceScopes, clientSecretTtlSeconds: settings.clientSecretTtlSeconds }),
    },
    // Refresh tokens go to every client registered for the refresh_token grant, without the OIDC
    // offline_access scope (MCP clients do not ask for it); they outlive the short browser session.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    expiresWithSession: async () => false,
    // OAuth 2.1 §4.3.1 / RFC 9700 §4.14.2: every use rotates, for public and confidential clients
    // alike; oidc-provider revokes the whole grant when a rotated (consumed) token comes back.
    rotateRefreshToken: true,
    features: { ...features(settings, resources), mTLS: mtlsFeature(settings) },
    ...(shared.mtlsTokenEndpoint === undefined ? {} : { discovery: { mtls_endpoint_aliases: { token_endpoint: shared.mtlsTokenEndpoint } } }),
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    interactions: { url: async (_ctx, interaction) => `${INTERACTION_PATH}${interaction.uid}` },
    // OAuth 2.1: PKCE for every authorization code, S256 being the only method oidc-provider has.
    pkce: { required: () => true },
    renderError: async (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
    responseTypes: ['code'],
    scopes: ['openid', ...new Set(resourceScopes)],
    ttl: tokenLifetimes(settings),
  };
}

/** What the provider offers: registration and its management, resource indicators, revocation; nothing else. */
function features(settings: IssuerSettings, resources: ResourcePolicy): NonNullable<ProviderConfiguration['features']> {
  return {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    registration: {
      enabled: true,
      initialAccessToken: settings.initialAccessToken ?? false,
      // RFC 7592: the registration access token manages (and rotates the secret of) the client.
      issueRegistrationAccessToken: true,
    },
    // RFC 7592 §2.2: an update replaces the client's secret (client-policy.ts); every use of the
    // registration access token replaces it too, so a leaked one works at most once.
    registrationManagement: { enabled: true, rotateRegistrationAccessToken: true },
    // Client ID Metadata Documents (MCP 2026-07-28's recommended registration): an https client_id
    // is fetched by oidc-provider (outbound.ts), must name itself, is cached by its HTTP caching
    // headers within [30 s, 1 day]; such a client is interactive only (client-policy.ts).
    clientIdMetadataDocument: { enabled: true, ack: 'draft-02', allowClient: async (_ctx: ProviderContext, client: ProviderClient) => isInteractiveOnly(client) },
    resourceIndicators: {
      enabled: true,
      defaultResource: resources.defaultResource,
      getResourceServerInfo: resources.getResourceServerInfo,
      // A code bound to one resource may be exchanged without repeating it.
      useGrantedResource: async () => true,
    },
    // RFC 7009: a client revokes its own refresh token, which ends the grant and its whole family.
    // Access tokens are JWTs the gateway verifies offline; they are short-lived rather than revocable.
    // Another client's token is left alone, answered like any token it cannot see (RFC 7009 §2.2).
    revocation: { enabled: true, allowedPolicy: async (_ctx: ProviderContext, client: ProviderClient, token: { readonly clientId?: string }) => token.clientId === client.clientId },
    // Without userinfo, oidc-provider has no reason to mint audience-less access tokens.
    userinfo: { enabled: false },
    rpInitiatedLogout: { enabled: false },
    pushedAuthorizationRequests: { enabled: false },
    // RFC 9449: a client that sends a DPoP proof to the token endpoint gets a cnf.jkt-bound token
    // (token_type DPoP), which the gateway holds to that key; without a proof, Bearer as before.
    dPoP: { enabled: true },
  };
}

/**
 * RFC 8705 §3 certificate-bound access tokens: oidc-provider binds a token to what getCertificate returns
 * for clients registered with tls_client_certificate_bound_access_tokens, and refuses them without one.
 * Only a certificate the mTLS listener verified against its CA counts (it requests them optionally).
 */
function mtlsFeature(settings: IssuerSettings): Readonly<Record<string, unknown>> {
  if (settings.mtls === undefined) return { enabled: false };
  return {
    enabled: true,
    certificateBoundAccessTokens: true,
    getCertificate: (ctx: ProviderContext): X509Certificate | undefined => {
      const socket = ctx.req?.socket as TLSSocket | undefined;
      if (socket === undefined || typeof socket.getPeerCertificate !== 'function' || socket.authorized !== true) return undefined;
      const raw = socket.getPeerCertificate().raw as Buffer | undefined;
      return raw === undefined || raw.length === 0 ? undefined : new X509Certificate(raw);
    },
  };
}

/** How long each artifact lives. */
function tokenLifetimes(settings: IssuerSettings): NonNullable<ProviderConfiguration['ttl']> {
  const ttl = settings.accessTokenTtlSeconds;
  const refreshTtl = settings.refreshTokenTtlSeconds;
  // Last line of defence for "never audience-less": oidc-provider would mint an opaque token
  // without a resource server for e.g. `resource=` with a scope; the ttl lookup refuses it.
  const audienceBoundTtl = (_ctx: ProviderContext, token: ProviderToken): number => {
    if (token.resourceServer === undefined) throw new errors.InvalidTarget(MISSING_RESOURCE);
    return ttl;
  };
  return {
    AccessToken: audienceBoundTtl,
    ClientCredentials: audienceBoundTtl,
    AuthorizationCode: AUTHORIZATION_CODE_TTL_SECONDS,
    IdToken: ttl,
    // A rotated-in token inherits what is left of its predecessor: the family's absolute lifetime.
    RefreshToken: (ctx: ProviderContext, _token: ProviderToken, _client: ProviderClient) =>
      ctx.oidc?.entities.RotatedRefreshToken?.remainingTTL ?? refreshTtl,
    Interaction: BROWSER_STATE_TTL_SECONDS,
    Session: BROWSER_STATE_TTL_SECONDS,
    // A refresh token is only valid while its grant exists.
    Grant: refreshTtl,
  };
}

function toClientMetadata(client: IssuerStaticClient): StaticClientMetadata {
  // Clients that never visit the authorization endpoint register no response types.
  const responseTypes = client.grant_types.includes('authorization_code') ? ['code'] : [];
  return { ...client, response_types: responseTypes };
}
