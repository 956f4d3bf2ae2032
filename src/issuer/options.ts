// Validates IssuerOptions once, before anything listens, and freezes the result (STYLE rule 3).
import { ConfigError, type ConfigProblem } from '../config/errors.ts';
import { isLoopbackHost, isSecureOrLoopback, parseUrl } from '../config/urls.ts';
import { validateFederation, type FederationSettings } from './federation/settings.ts';
import type { OutboundSettings } from './outbound.ts';
import type { IssuerMtlsListener, IssuerOptions, IssuerResource, IssuerSsfOptions, IssuerStaticClient, SigningAlg } from './types.ts';

export interface IssuerSettings {
  /** undefined: derived from the actual listen address (see issuerFor). */
  readonly issuer: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly keysFile: string;
  readonly resources: readonly IssuerResource[];
  readonly accessTokenTtlSeconds: number;
  readonly signingAlg: SigningAlg;
  readonly rotationGraceSeconds: number;
  readonly refreshTokenTtlSeconds: number;
  readonly initialAccessToken: string | undefined;
  readonly clientSecretTtlSeconds: number;
  readonly clients: readonly IssuerStaticClient[];
  readonly federation: FederationSettings;
  readonly outbound: OutboundSettings;
  readonly mtls: IssuerMtlsListener | undefined;
  /**
   * Issuer host AND listen host are loopback: nothing can reach the issuer from another machine,
   * which is the only case where registration may be open and login auto-approved (STYLE rule 14).
   */
  readonly local: boolean;
  /** The SSF transmitter, retention resolved; undefined = not a transmitter. */
  readonly ssf: (IssuerSsfOptions & { readonly retentionSeconds: number }) | undefined;
  readonly now: () => number;
}

const DEFAULT_TTL_SECONDS = 300;
const MAX_TTL_SECONDS = 3600;
const DEFAULT_GRACE_SECONDS = 60;
const DEFAULT_REFRESH_TTL_SECONDS = 86_400;
const MAX_REFRESH_TTL_SECONDS = 30 * 86_400;
const DEFAULT_SECRET_TTL_SECONDS = 30 * 86_400;
const MAX_SECRET_TTL_SECONDS = 365 * 86_400;
const MIN_INITIAL_ACCESS_TOKEN_LENGTH = 32;
const SIGNING_ALGS: ReadonlySet<string> = new Set(['ES256', 'EdDSA']);
// RFC 6749 §3.3 scope-token; openid and offline_access belong to oidc-provider, not to resources.
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const RESERVED_SCOPES: ReadonlySet<string> = new Set(['openid', 'offline_access']);

export function validateIssuerOptions(options: IssuerOptions): IssuerSettings {
  const problems: ConfigProblem[] = [];
  const fail = (key: string, message: string): void => {
    problems.push({ file: 'issuer options', line: undefined, key, message });
  };

  checkListener(options, fail);
  const { ttl, refreshTtl, secretTtl, grace, signingAlg } = checkTokens(options, fail);
  checkResources(options.resources, fail);
  checkClients(options.clients ?? [], options.resources, fail);
  const taken = new Set([...(options.clients ?? []).map((c) => c.client_id), ...options.resources.map((r) => r.audience)]);
  const federation = validateFederation(options.federation, options.resources, taken, fail);

  const issuerHost = checkIssuer(options, fail);
  const local = issuerHost !== undefined && isLoopbackHost(issuerHost) && isLoopbackHost(options.host);
  const iat = checkInitialAccessToken(options, local, issuerHost, fail);
  checkFetch(options, fail);
  checkMtls(options, fail);
  const ssf = checkSsf(options.ssf, ttl, fail);
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    issuer: options.issuer,
    host: options.host,
    port: options.port,
    keysFile: options.keysFile,
    resources: Object.freeze(options.resources.map((r) => Object.freeze({ audience: r.audience, scopes: Object.freeze([...r.scopes]) }))),
    accessTokenTtlSeconds: ttl,
    signingAlg,
    rotationGraceSeconds: grace,
    refreshTokenTtlSeconds: refreshTtl,
    initialAccessToken: iat,
    clientSecretTtlSeconds: secretTtl,
    clients: Object.freeze([...(options.clients ?? [])]),
    federation,
    outbound: Object.freeze({ privateHosts: Object.freeze([...(options.fetch?.privateHosts ?? [])]), caFile: options.fetch?.caFile }),
    mtls: options.mtls === undefined ? undefined : Object.freeze({ ...options.mtls }),
    local,
    ssf,
    now: options.now ?? Date.now,
  });
}

/** A SET must outlive every token it can cut, so a gateway that (re)starts still finds it (RFC 8936 §2.4). */
function checkSsf(ssf: IssuerSsfOptions | undefined, ttl: number, fail: Fail): IssuerSettings['ssf'] {
  if (ssf === undefined) return undefined;
  if (ssf.audience === '') fail('ssf.audience', 'must not be empty');
  const retentionSeconds = ssf.retentionSeconds ?? ttl + 60;
  if (!Number.isInteger(retentionSeconds) || retentionSeconds < ttl || retentionSeconds > 7 * 86_400) fail('ssf.retentionSeconds', 'must be an integer between accessTokenTtlSeconds and 604800');
  return Object.freeze({ ...ssf, retentionSeconds });
}

type Fail = (key: string, message: string) => void;

// RFC 8705: a certificate-bound client needs the listener where certificates are presented.
function checkMtls(options: IssuerOptions, fail: Fail): void {
  const m = options.mtls;
  if (m !== undefined) {
    if (!Number.isInteger(m.port) || m.port < 0 || m.port > 65535) fail('mtls.port', 'must be an integer between 0 and 65535');
    for (const key of ['certFile', 'keyFile', 'clientCaFile'] as const) if (m[key] === '') fail(`mtls.${key}`, 'must not be empty');
  }
  (options.clients ?? []).forEach((c, i) => {
    if (c.tls_client_certificate_bound_access_tokens === true && m === undefined) {
      fail(`clients[${i}].tls_client_certificate_bound_access_tokens`, 'needs mtls (a TLS listener with client certificates)');
    }
  });
}

function checkListener(options: IssuerOptions, fail: Fail): void {
  if (options.host === '') fail('host', 'must not be empty');
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
    fail('port', 'must be an integer between 0 and 65535');
  }
  if (options.keysFile === '') fail('keysFile', 'must not be empty');
}

/** Lifetimes and the signing algorithm, defaults applied. */
function checkTokens(options: IssuerOptions, fail: Fail): { ttl: number; refreshTtl: number; secretTtl: number; grace: number; signingAlg: SigningAlg } {
  const ttl = options.accessTokenTtlSeconds ?? DEFAULT_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS) {
    fail('accessTokenTtlSeconds', `must be an integer between 1 and ${MAX_TTL_SECONDS}`);
  }
  const refreshTtl = options.refreshTokenTtlSeconds ?? DEFAULT_REFRESH_TTL_SECONDS;
  if (!Number.isInteger(refreshTtl) || refreshTtl < ttl || refreshTtl > MAX_REFRESH_TTL_SECONDS) {
    fail('refreshTokenTtlSeconds', `must be an integer between accessTokenTtlSeconds and ${MAX_REFRESH_TTL_SECONDS}`);
  }
  const secretTtl = options.registration?.clientSecretTtlSeconds ?? DEFAULT_SECRET_TTL_SECONDS;
  // No value means "never": a permanent credential nobody rotates is what expiry exists to prevent.
  if (!Number.isInteger(secretTtl) || secretTtl < 1 || secretTtl > MAX_SECRET_TTL_SECONDS) {
    fail('registration.clientSecretTtlSeconds', `must be an integer between 1 and ${MAX_SECRET_TTL_SECONDS}`);
  }
  const grace = options.rotationGraceSeconds ?? DEFAULT_GRACE_SECONDS;
  if (!Number.isFinite(grace) || grace < 0) fail('rotationGraceSeconds', 'must be a number >= 0');
  const signingAlg = options.signingAlg ?? 'ES256';
  if (!SIGNING_ALGS.has(signingAlg)) fail('signingAlg', 'must be ES256 or EdDSA');
  return { ttl, refreshTtl, secretTtl, grace, signingAlg };
}

/** Open registration only where nothing off the machine can reach the issuer (STYLE rule 14). */
function checkInitialAccessToken(options: IssuerOptions, local: boolean, issuerHost: string | undefined, fail: Fail): string | undefined {
  const iat = options.registration?.initialAccessToken;
  if (iat === undefined && !local && issuerHost !== undefined) {
    fail('registration.initialAccessToken', 'is required unless the issuer and its listener are both loopback');
  }
  if (iat !== undefined && iat.length < MIN_INITIAL_ACCESS_TOKEN_LENGTH) {
    fail('registration.initialAccessToken', `must be at least ${MIN_INITIAL_ACCESS_TOKEN_LENGTH} characters`);
  }
  return iat;
}

function checkFetch(options: IssuerOptions, fail: Fail): void {
  for (const host of options.fetch?.privateHosts ?? []) {
    if (host === '' || host.includes('*') || host.includes('/')) fail('fetch.privateHosts', `"${host}" must be one host name or address, no wildcards`);
  }
}

/** The issuer identifier: the configured one verbatim, or http://host:port from the listen address. */
export function issuerFor(settings: IssuerSettings, actualPort: number): string {
  if (settings.issuer !== undefined) return settings.issuer;
  const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  return `http://${host}:${actualPort}`;
}

/** Returns the issuer's hostname, or undefined when it is unusable (a problem is recorded). */
function checkIssuer(options: IssuerOptions, fail: (key: string, message: string) => void): string | undefined {
  if (options.issuer === undefined) {
    // Deriving http://host:port is only sound where plain http cannot leave the machine.
    if (!isLoopbackHost(options.host)) {
      fail('issuer', 'is required when host is not loopback (an https URL)');
      return undefined;
    }
    return options.host;
  }
  const url = parseUrl(options.issuer);
  if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    fail('issuer', 'must be an absolute http(s) URL');
    return undefined;
  }
  if (!isSecureOrLoopback(url)) {
    fail('issuer', 'must use https unless its host is loopback');
    return undefined;
  }
  // oidc-provider is served at the root here, so the issuer cannot carry a path (RFC 8414 §2).
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    fail('issuer', 'must be an origin without path, query, fragment or credentials');
    return undefined;
  }
  return url.hostname;
}

function checkResources(resources: readonly IssuerResource[], fail: (key: string, message: string) => void): void {
  if (resources.length === 0) fail('resources', 'must list at least one audience');
  const seen = new Set<string>();
  resources.forEach((resource, i) => {
    const key = `resources[${i}]`;
    const url = parseUrl(resource.audience);
    // RFC 8707 §2: an absolute URI without a fragment.
    if (url === undefined || url.hash !== '' || resource.audience.includes('#')) {
      fail(`${key}.audience`, 'must be an absolute URI without a fragment');
    } else if (!isSecureOrLoopback(url)) {
      fail(`${key}.audience`, 'must use https unless its host is loopback');
    }
    if (seen.has(resource.audience)) fail(`${key}.audience`, 'is listed twice');
    seen.add(resource.audience);
    for (const scope of resource.scopes) {
      if (!SCOPE_TOKEN.test(scope)) fail(`${key}.scopes`, `"${scope}" is not a valid scope token`);
      if (RESERVED_SCOPES.has(scope)) fail(`${key}.scopes`, `"${scope}" is reserved`);
    }
  });
}

function checkClients(clients: readonly IssuerStaticClient[], resources: readonly IssuerResource[], fail: (key: string, message: string) => void): void {
  const seen = new Set<string>();
  const audiences = new Set(resources.map((r) => r.audience));
  const scopes = new Set(resources.flatMap((r) => r.scopes));
  clients.forEach((client, i) => {
    const key = `clients[${i}]`;
    // oidc-provider would only refuse it at the client's first request, after start or reload.
    for (const scope of client.scope?.split(' ').filter((s) => s !== '') ?? []) {
      if (!scopes.has(scope)) fail(`${key}.scope`, `"${scope}" is not a scope of any resource`);
    }
    if (client.client_id === '') fail(`${key}.client_id`, 'must not be empty');
    if (seen.has(client.client_id)) fail(`${key}.client_id`, 'is listed twice');
    seen.add(client.client_id);
    // An ID token's aud is the client_id: it must never equal an audience access tokens carry.
    if (audiences.has(client.client_id)) fail(`${key}.client_id`, 'must not equal a resource audience');
    if (client.grant_types.length === 0) fail(`${key}.grant_types`, 'must not be empty');
    // RFC 6749 §4.4: only confidential clients may use client_credentials.
    const keyAuth = client.token_endpoint_auth_method === 'private_key_jwt';
    if (client.grant_types.includes('client_credentials') && (client.token_endpoint_auth_method === 'none' || (client.client_secret === undefined && !keyAuth))) {
      fail(`${key}`, 'client_credentials needs a client_secret and client authentication');
    }
    checkClientKeys(client, key, fail);
    // Nobody consents for a client_credentials client: its scope is the only limit on its tokens.
    if (client.grant_types.includes('client_credentials') && (client.scope === undefined || client.scope.trim() === '')) {
      fail(`${key}.scope`, 'is required for a client_credentials client');
    }
  });
}

/** RFC 7523 §2.2 client authentication: keys exactly when the method needs them, never beside a secret. */
function checkClientKeys(client: IssuerStaticClient, key: string, fail: (key: string, message: string) => void): void {
  const hasKeys = client.jwks !== undefined || client.jwks_uri !== undefined;
  if (client.token_endpoint_auth_method !== 'private_key_jwt') {
    if (hasKeys) fail(`${key}.jwks`, 'is only used with token_endpoint_auth_method private_key_jwt');
    return;
  }
  if (client.client_secret !== undefined) fail(`${key}.client_secret`, 'must not be set for a private_key_jwt client');
  if (client.jwks !== undefined && client.jwks_uri !== undefined) fail(`${key}.jwks_uri`, 'set jwks or jwks_uri, not both');
  if (!hasKeys) fail(`${key}.jwks`, 'private_key_jwt needs jwks or jwks_uri');
  if (client.jwks_uri !== undefined) {
    const url = parseUrl(client.jwks_uri);
    if (url === undefined || !isSecureOrLoopback(url)) fail(`${key}.jwks_uri`, 'must be an https URL (http only on loopback)');
  }
  for (const jwk of client.jwks?.keys ?? []) {
    if ('d' in jwk) fail(`${key}.jwks`, 'must hold public keys only');
  }
}
