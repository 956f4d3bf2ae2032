// What a client may register as, on top of oidc-provider's own RFC 7591 / OIDC registration checks.
// oidc-provider has no policy hook for standard metadata; a custom property's validator runs for
// every client (static and registered) with all of its metadata, and may change it (its contract).
import { randomBytes } from 'node:crypto';
import { errors, type ProviderClient, type ProviderContext } from 'oidc-provider';
import { isLoopbackHost, parseUrl } from '../config/urls.ts';
import { JWT_BEARER } from './federation/settings.ts';

export const CLIENT_POLICY_HOOK = 'urn:mcp-warden:client-policy';

export interface ClientPolicySettings {
  /** Every scope some resource declares: what an interactive client may ask for over time. */
  readonly resourceScopes: readonly string[];
  /** Lifetime of a dynamically registered client's secret (RFC 7591 §3.2.1 client_secret_expires_at). */
  readonly clientSecretTtlSeconds: number;
}

type Metadata = Record<string, unknown>;

/** The extraClientMetadata validator: refuses, or completes, a client's metadata. */
export function createClientPolicy(settings: ClientPolicySettings) {
  return (ctx: ProviderContext | undefined, key: string, _value: unknown, metadata: Metadata): void => {
    if (key !== CLIENT_POLICY_HOOK) return;
    checkGrants(metadata);
    checkRedirectUris(metadata);
    // Without a context the metadata is a static client or a stored registration being re-read:
    // it was judged when it was configured or registered, and must not change now.
    const route = ctx?.oidc?.route;
    if (route !== 'registration' && route !== 'client_update') return;
    // Federated workload clients come from federation rules only: a registration cannot claim one.
    if (grantTypes(metadata).includes(JWT_BEARER)) {
      throw new errors.InvalidClientMetadata('the jwt-bearer grant is for federated workloads configured in federation.trust, not for registered clients');
    }
    if (route === 'client_update') checkUpdate(metadata, ctx?.oidc?.client);
    widenInteractiveScope(metadata, settings.resourceScopes);
    expireSecret(metadata, route, settings);
  };
}

const INTERACTIVE_GRANTS: ReadonlySet<string> = new Set(['authorization_code', 'refresh_token']);

/**
 * A client nobody registered with us (a Client ID Metadata Document) may only act for a user who
 * consents: a document anyone can publish must never yield client_credentials or workload tokens.
 */
export function isInteractiveOnly(client: ProviderClient): boolean {
  return client.grantTypes.every((g) => INTERACTIVE_GRANTS.has(g));
}

function grantTypes(metadata: Metadata): readonly unknown[] {
  const value = metadata['grant_types'];
  return Array.isArray(value) ? value : [];
}

function checkGrants(metadata: Metadata): void {
  if (!grantTypes(metadata).includes('client_credentials')) return;
  // RFC 6749 §4.4: client_credentials is for confidential clients; oidc-provider would allow `none`.
  if (metadata['token_endpoint_auth_method'] === 'none') {
    throw new errors.InvalidClientMetadata('client_credentials requires client authentication; token_endpoint_auth_method none is refused');
  }
  // With no consent step, the registered scope is the only limit on what the client gets:
  // oidc-provider lets a client without `scope` metadata ask for any scope.
  if (typeof metadata['scope'] !== 'string' || metadata['scope'].trim() === '') {
    throw new errors.InvalidClientMetadata('a client_credentials client must register the scopes it may use (scope)');
  }
}

/**
 * MCP client registration: redirect URIs are https or loopback http, matched exactly; a `native`
 * client's loopback redirects match on any port (RFC 8252 §7.3), which oidc-provider does itself.
 */
function checkRedirectUris(metadata: Metadata): void {
  const uris = metadata['redirect_uris'];
  if (!Array.isArray(uris) || metadata['application_type'] === 'native') return;
  for (const uri of uris) {
    const url = typeof uri === 'string' ? parseUrl(uri) : undefined;
    if (url === undefined) continue; // oidc-provider refuses it with its own message
    if (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname))) continue;
    throw new errors.InvalidClientMetadata('redirect_uris of a web client must be https or http on a loopback address (use application_type native for custom schemes)');
  }
}

/**
 * RFC 7592 §2.2 lets the server refuse changes. The registration access token rotates secrets; it
 * must not become a way to change what the client is: its grants stay, and a client_credentials
 * client's scope may only shrink (the registrar chose it, possibly with an initial access token).
 */
function checkUpdate(metadata: Metadata, current: ProviderClient | undefined): void {
  if (current === undefined) throw new errors.InvalidClientMetadata('no client to update');
  const next = grantTypes(metadata);
  if (next.length !== current.grantTypes.length || !current.grantTypes.every((g) => next.includes(g))) {
    throw new errors.InvalidClientMetadata('grant_types cannot be changed by an update; register a new client');
  }
  if (!next.includes('client_credentials')) return;
  const allowed = new Set((current.scope ?? '').split(' '));
  const requested = typeof metadata['scope'] === 'string' ? metadata['scope'].split(' ').filter((s) => s !== '') : [];
  if (requested.some((s) => !allowed.has(s))) throw new errors.InvalidClientMetadata('an update cannot widen a client_credentials client\'s scope');
}

/**
 * Step-up (MCP scope selection): an interactive client registers with the scope of its first 401,
 * and later asks for the one a 403 names. Its grants are bounded by consent and by each resource's
 * scopes, not by a registration-time guess, so it may ask for any resource scope. A client that can
 * use client_credentials keeps exactly what it registered: nobody consents for it.
 */
function widenInteractiveScope(metadata: Metadata, resourceScopes: readonly string[]): void {
  if (grantTypes(metadata).includes('client_credentials')) return;
  metadata['scope'] = [...new Set(resourceScopes)].join(' ');
}

/**
 * No secret lives forever: a registration gets one that expires, and an RFC 7592 update
 * (PUT on registration_client_uri with the registration access token) replaces it with a fresh one.
 */
function expireSecret(metadata: Metadata, route: string, settings: ClientPolicySettings): void {
  if (typeof metadata['client_secret'] !== 'string') return;
  if (route === 'client_update') metadata['client_secret'] = randomBytes(32).toString('base64url');
  // oidc-provider checks expiry against Date.now(), so the expiry is set from it too.
  metadata['client_secret_expires_at'] = Math.floor(Date.now() / 1000) + settings.clientSecretTtlSeconds;
}
