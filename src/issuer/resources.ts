// RFC 8707 resource indicators: the configured audiences are the only ones tokens may carry.
import { errors, type ProviderClient, type ProviderContext, type ResourceServerInfo } from 'oidc-provider';
import type { IssuerResource, SigningAlg } from './types.ts';

export interface ResourcePolicy {
  defaultResource(ctx: ProviderContext, client: ProviderClient, oneOf?: readonly string[]): Promise<string | readonly string[]>;
  getResourceServerInfo(ctx: ProviderContext, indicator: string, client: ProviderClient): Promise<ResourceServerInfo>;
}

export interface TokenShape {
  readonly ttlSeconds: number;
  readonly alg: SigningAlg;
  readonly signingKid: string;
}

export const MISSING_RESOURCE = 'a resource parameter naming one audience is required (RFC 8707); tokens without an audience are never issued';

export function createResourcePolicy(resources: readonly IssuerResource[], token: TokenShape): ResourcePolicy {
  const scopesByAudience = new Map(resources.map((r) => [r.audience, r.scopes.join(' ')]));
  return {
    async defaultResource(_ctx, _client, oneOf) {
      // Called without oneOf when a request names no resource: refuse rather than pick one.
      if (oneOf === undefined) throw new errors.InvalidTarget(MISSING_RESOURCE);
      // At the token endpoint, a grant bound to exactly one resource may omit it (RFC 8707 §2.2).
      return oneOf.length === 1 && oneOf[0] !== undefined ? oneOf[0] : oneOf;
    },
    async getResourceServerInfo(_ctx, indicator) {
      // Exact string match: the token's aud is the indicator itself, never a normalised form.
      const scope = scopesByAudience.get(indicator);
      if (scope === undefined) throw new errors.InvalidTarget('resource is not an audience of this issuer');
      // oidc-provider narrows the token's scope to these, after checking the client's own
      // `scope` metadata: granted = requested ∩ client-allowed ∩ resource scopes.
      return {
        scope,
        audience: indicator,
        accessTokenTTL: token.ttlSeconds,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: token.alg, kid: token.signingKid } },
      };
    },
  };
}
