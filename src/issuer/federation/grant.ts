// The RFC 7523 §2.1 JWT-bearer grant for federated workloads, registered with oidc-provider
// (registerGrantType): the platform token is verified with jose against the platform's JWKS
// (the gateway's IssuerKeys: rotation, outage window, fail closed), mapped by rule to a client,
// and exchanged for a short, single-resource access token minted by oidc-provider itself.
import { decodeJwt, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { errors, type GrantContext, type Provider, type ResourceServerInfo, type StaticClientMetadata } from 'oidc-provider';
import type { IssuerConfig } from '../../config/compile.ts';
import { IssuerKeys, KeysUnavailable } from '../../auth/keys.ts';
import type { ResourcePolicy } from '../resources.ts';
import { ReplayCache } from './replay.ts';
import { matchRule } from './rules.ts';
import { JWT_BEARER, type FederationSettings } from './settings.ts';
import type { FederationRule, TrustedPlatform } from './types.ts';

const MAX_ASSERTION_CHARS = 16_384;
const REPLAY_ENTRIES = 100_000;
const DEFAULT_SKEW_SECONDS = 30;

interface Platform {
  readonly config: TrustedPlatform;
  readonly audience: string;
  readonly keys: IssuerKeys;
}

export interface Federation {
  /** One public client per rule: the workload names it as client_id and authenticates with the assertion alone. */
  readonly clients: readonly StaticClientMetadata[];
  register(provider: Provider, resources: ResourcePolicy): void;
  stop(): void;
}

export function createReplayCache(): ReplayCache {
  return new ReplayCache(REPLAY_ENTRIES);
}

export function createFederation(settings: FederationSettings, issuerUrl: string, replay: ReplayCache): Federation {
  const platforms = new Map<string, Platform>(settings.trust.map((p) => [p.issuer, {
    config: p,
    audience: p.audience ?? issuerUrl,
    keys: new IssuerKeys(keysConfig(p), { now: Date.now }),
  }]));
  for (const platform of platforms.values()) void platform.keys.start();
  const clients = settings.trust.flatMap((p) => p.rules.map((rule): StaticClientMetadata => ({
    client_id: rule.clientId,
    grant_types: [JWT_BEARER],
    response_types: [],
    token_endpoint_auth_method: 'none',
    scope: rule.scopes.join(' '),
  })));
  return {
    clients,
    register(provider, resources) {
      if (platforms.size === 0) return;
      const handler = (ctx: GrantContext): Promise<void> => exchange(ctx, provider, resources, { settings, platforms, replay });
      provider.registerGrantType(JWT_BEARER, handler, ['assertion', 'scope', 'resource'], ['resource']);
    },
    stop() {
      for (const platform of platforms.values()) platform.keys.stop();
    },
  };
}

interface Exchange {
  readonly settings: FederationSettings;
  readonly platforms: ReadonlyMap<string, Platform>;
  readonly replay: ReplayCache;
}

async function exchange(ctx: GrantContext, provider: Provider, resources: ResourcePolicy, ex: Exchange): Promise<void> {
  const { platform, claims } = await verifiedAssertion(ctx.oidc.params['assertion'], ex);
  const rule = matchRule(platform.config.rules, claims);
  if (rule === undefined) throw new errors.InvalidGrant('no federation rule maps this workload');
  if (rule.clientId !== ctx.oidc.client.clientId) throw new errors.InvalidGrant('the assertion does not map to this client_id');
  const resource = singleResource(ctx.oidc.params['resource'], rule);
  const info = await resources.getResourceServerInfo(ctx, resource, ctx.oidc.client);
  const scope = grantedScope(ctx.oidc.params['scope'], rule, info);
  // Last, after the signature: only verified assertions can take a place in the cache.
  const use = ex.replay.use(platform.config.issuer, claims.jti as string, (claims.exp as number) * 1000);
  if (use === 'replayed') throw new errors.InvalidGrant('the assertion was already used (jti)');
  if (use === 'full') throw new errors.TemporarilyUnavailable('too many assertions in flight; retry shortly');

  const ttl = ex.settings.tokenTtlSeconds;
  const token = new provider.ClientCredentials({ client: ctx.oidc.client, scope, expiresIn: ttl });
  token.resourceServer = new provider.ResourceServer(resource, { ...info, accessTokenTTL: ttl });
  ctx.oidc.entity('ClientCredentials', token);
  const value = await token.save();
  ctx.body = { access_token: value, token_type: 'Bearer', expires_in: ttl, scope };
}

/** Cheap checks (size, syntax, trusted iss, lifetime) before any key fetch or signature check. */
async function verifiedAssertion(assertion: unknown, ex: Exchange): Promise<{ platform: Platform; claims: JWTPayload }> {
  if (typeof assertion !== 'string' || assertion === '' || assertion.length > MAX_ASSERTION_CHARS) {
    throw new errors.InvalidRequest('assertion must be one JWT');
  }
  let unverified: JWTPayload;
  try {
    unverified = decodeJwt(assertion);
  } catch {
    throw new errors.InvalidGrant('assertion is not a JWT');
  }
  const platform = typeof unverified.iss === 'string' ? ex.platforms.get(unverified.iss) : undefined;
  if (platform === undefined) throw new errors.InvalidGrant('assertion issuer is not trusted');
  checkLifetime(unverified, ex.settings.maxAssertionLifetimeSeconds, platform.config.clockSkewSeconds ?? DEFAULT_SKEW_SECONDS);
  try {
    const { payload } = await jwtVerify(assertion, platform.keys.resolve, {
      issuer: platform.config.issuer,
      // RFC 7523 §3 item 3: the audience identifies this authorization server.
      audience: platform.audience,
      algorithms: [...platform.config.algorithms],
      clockTolerance: platform.config.clockSkewSeconds ?? DEFAULT_SKEW_SECONDS,
      requiredClaims: ['exp', 'iat', 'sub', 'jti'],
    });
    return { platform, claims: payload };
  } catch (error) {
    if (error instanceof KeysUnavailable) throw new errors.TemporarilyUnavailable('the platform issuer keys are unavailable');
    if (error instanceof Error) throw new errors.InvalidGrant(`assertion refused: ${reason(error)}`);
    throw error;
  }
}

/** RFC 7523 §3 items 4-6: exp and iat required; short-lived, so a stolen assertion is worth little. */
function checkLifetime(claims: JWTPayload, maxSeconds: number, skewSeconds: number): void {
  const { exp, iat, jti } = claims;
  if (typeof exp !== 'number' || typeof iat !== 'number' || !Number.isFinite(exp) || !Number.isFinite(iat)) {
    throw new errors.InvalidGrant('assertion must carry numeric exp and iat');
  }
  if (typeof jti !== 'string' || jti === '' || jti.length > 256) throw new errors.InvalidGrant('assertion must carry a jti');
  const now = Date.now() / 1000;
  if (exp - iat > maxSeconds || exp > now + maxSeconds + skewSeconds) {
    throw new errors.InvalidGrant(`assertion lifetime exceeds ${maxSeconds} seconds`);
  }
}

function singleResource(value: unknown, rule: FederationRule): string {
  // RFC 8707 §2: one audience per token; the rule names which.
  if (typeof value !== 'string') throw new errors.InvalidTarget('exactly one resource parameter is required');
  if (!rule.resources.includes(value)) throw new errors.InvalidTarget('this workload may not get tokens for that resource');
  return value;
}

function grantedScope(value: unknown, rule: FederationRule, info: ResourceServerInfo): string {
  const allowed = new Set(rule.scopes.filter((s) => info.scope.split(' ').includes(s)));
  const requested = typeof value === 'string' && value !== '' ? value.split(' ') : [...allowed];
  const refused = requested.filter((s) => !allowed.has(s));
  if (refused.length > 0) throw new errors.InvalidScope(`scope not allowed for this workload: ${refused.join(' ')}`);
  if (requested.length === 0) throw new errors.InvalidScope('no scope of this resource is allowed for this workload');
  return [...new Set(requested)].join(' ');
}

function reason(error: Error): string {
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `${error.claim} ${error.reason}`;
  if (error instanceof joseErrors.JWTExpired) return 'expired';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'signature';
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm';
  return 'key or signature';
}

function keysConfig(p: TrustedPlatform): IssuerConfig {
  return {
    name: p.name,
    issuer: p.issuer,
    jwksUri: p.jwksUri,
    algorithms: p.algorithms,
    clockSkewSeconds: p.clockSkewSeconds ?? DEFAULT_SKEW_SECONDS,
    maxTokenAgeSeconds: undefined,
    maxTokenLifetimeSeconds: 600,
    typ: undefined,
    scopeClaim: 'scope',
    senderConstraint: 'none',
    jwks: {
      cacheMaxAgeSeconds: p.jwks?.cacheMaxAgeSeconds ?? 600,
      cooldownSeconds: p.jwks?.cooldownSeconds ?? 30,
      // The gateway's defaults (config/schema.ts jwks): one unknown-kid refetch a second, retries back off to 10 s.
      unknownKidIntervalMs: 1_000,
      retryMaxSeconds: 10,
      staleIfErrorSeconds: p.jwks?.staleIfErrorSeconds ?? 300,
      timeoutMs: p.jwks?.timeoutMs ?? 5_000,
      maxBytes: 512 * 1024,
    },
    introspection: undefined,
  };
}
