// The oidc-provider configuration: every default that matters is set here on purpose, so the
// provider prints no "you SHOULD/MUST change this" notices and no dev-only feature is on.
import {
  errors,
  type AdapterFactory,
  type ProviderConfiguration,
  type ProviderContext,
  type ProviderToken,
  type StaticClientMetadata,
} from 'oidc-provider';
import type { KeyView } from './key-ring.ts';
import type { IssuerSettings } from './options.ts';
import { createResourcePolicy, MISSING_RESOURCE } from './resources.ts';
import type { IssuerStaticClient } from './types.ts';

/** State that outlives one Provider instance (a key change builds a new one). */
export interface SharedProviderState {
  readonly adapter: AdapterFactory;
  readonly cookieKeys: readonly string[];
}

export const INTERACTION_PATH = '/interaction/';
/** Short-lived browser artifacts: the issuer is for demos and tests, not for long sessions. */
const BROWSER_STATE_TTL_SECONDS = 600;
const AUTHORIZATION_CODE_TTL_SECONDS = 60;

export function buildProviderConfiguration(settings: IssuerSettings, keys: KeyView, shared: SharedProviderState): ProviderConfiguration {
  const ttl = settings.accessTokenTtlSeconds;
  const alg = settings.signingAlg;
  const resources = createResourcePolicy(settings.resources, { ttlSeconds: ttl, alg, signingKid: keys.signingKid });
  // Last line of defence for "never audience-less": oidc-provider would mint an opaque token
  // without a resource server for e.g. `resource=` with a scope; the ttl lookup refuses it.
  const audienceBoundTtl = (_ctx: ProviderContext, token: ProviderToken): number => {
    if (token.resourceServer === undefined) throw new errors.InvalidTarget(MISSING_RESOURCE);
    return ttl;
  };
  const resourceScopes = settings.resources.flatMap((r) => r.scopes);

  return {
    // oidc-provider's own in-memory adapter, knowingly: this issuer is single-node and its
    // grants, codes and registered clients may be lost on restart. A private store per issuer
    // (not the module-global default) keeps issuers in one process apart and survives key changes.
    adapter: shared.adapter,
    jwks: { keys: keys.keys },
    clients: settings.clients.map(toClientMetadata),
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
    // oidc-provider has no policy hook for standard metadata; a custom property's validator runs
    // for every client (static and registered) and sees all of its metadata.
    extraClientMetadata: { properties: [CLIENT_POLICY_HOOK], validator: checkClientPolicy },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      registration: {
        enabled: true,
        initialAccessToken: settings.initialAccessToken ?? false,
        // RFC 7592 management is off, so a registration access token would have no use.
        issueRegistrationAccessToken: false,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: resources.defaultResource,
        getResourceServerInfo: resources.getResourceServerInfo,
        // A code bound to one resource may be exchanged without repeating it.
        useGrantedResource: async () => true,
      },
      // Without userinfo, oidc-provider has no reason to mint audience-less access tokens.
      userinfo: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      // RFC 9449: a client that sends a DPoP proof to the token endpoint gets a cnf.jkt-bound token
      // (token_type DPoP), which the gateway holds to that key; without a proof, Bearer as before.
      dPoP: { enabled: true },
    },
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
    ttl: {
      AccessToken: audienceBoundTtl,
      ClientCredentials: audienceBoundTtl,
      AuthorizationCode: AUTHORIZATION_CODE_TTL_SECONDS,
      IdToken: ttl,
      RefreshToken: ttl,
      Interaction: BROWSER_STATE_TTL_SECONDS,
      Session: BROWSER_STATE_TTL_SECONDS,
      Grant: BROWSER_STATE_TTL_SECONDS,
    },
  };
}

const CLIENT_POLICY_HOOK = 'urn:mcp-warden:client-policy';

/** RFC 6749 §4.4: client_credentials is for confidential clients; oidc-provider would allow `none`. */
function checkClientPolicy(_ctx: ProviderContext | undefined, key: string, _value: unknown, metadata: Readonly<Record<string, unknown>>): void {
  if (key !== CLIENT_POLICY_HOOK) return;
  const grantTypes = metadata['grant_types'];
  if (Array.isArray(grantTypes) && grantTypes.includes('client_credentials') && metadata['token_endpoint_auth_method'] === 'none') {
    throw new errors.InvalidClientMetadata('client_credentials requires client authentication; token_endpoint_auth_method none is refused');
  }
}

function toClientMetadata(client: IssuerStaticClient): StaticClientMetadata {
  // Clients that never visit the authorization endpoint register no response types.
  const responseTypes = client.grant_types.includes('authorization_code') ? ['code'] : [];
  return { ...client, response_types: responseTypes };
}
