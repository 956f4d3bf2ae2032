// Workload identity federation (RFC 7523 §2.1 JWT-bearer grant, MCP SEP-1933): which platform
// issuers are trusted, and which of their subjects become which client, with what scopes.
import { asymmetricAlgorithms } from '../../config/schema.ts';
import { isSecureOrLoopback, parseUrl } from '../../config/urls.ts';
import type { IssuerResource } from '../types.ts';
import type { FederationOptions, FederationRule, TrustedPlatform } from './types.ts';

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

export interface FederationSettings {
  readonly trust: readonly TrustedPlatform[];
  readonly tokenTtlSeconds: number;
  readonly maxAssertionLifetimeSeconds: number;
}

const MAX_TOKEN_TTL = 300;
const MAX_ASSERTION_LIFETIME = 600;
const CLIENT_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

type Fail = (key: string, message: string) => void;

export function validateFederation(options: FederationOptions | undefined, resources: readonly IssuerResource[], clientIds: ReadonlySet<string>, fail: Fail): FederationSettings {
  const tokenTtlSeconds = options?.tokenTtlSeconds ?? MAX_TOKEN_TTL;
  if (!Number.isInteger(tokenTtlSeconds) || tokenTtlSeconds < 1 || tokenTtlSeconds > MAX_TOKEN_TTL) fail('federation.tokenTtlSeconds', `must be an integer between 1 and ${MAX_TOKEN_TTL}`);
  const maxAssertionLifetimeSeconds = options?.maxAssertionLifetimeSeconds ?? MAX_ASSERTION_LIFETIME;
  if (!Number.isInteger(maxAssertionLifetimeSeconds) || maxAssertionLifetimeSeconds < 1 || maxAssertionLifetimeSeconds > MAX_ASSERTION_LIFETIME) {
    fail('federation.maxAssertionLifetimeSeconds', `must be an integer between 1 and ${MAX_ASSERTION_LIFETIME}`);
  }
  const names = new Set<string>();
  const issuers = new Set<string>();
  const ruleClients = new Set<string>();
  const scopesOf = new Map(resources.map((r) => [r.audience, new Set(r.scopes)]));
  (options?.trust ?? []).forEach((platform, i) => {
    const key = `federation.trust[${i}]`;
    if (names.has(platform.name)) fail(`${key}.name`, 'is listed twice');
    names.add(platform.name);
    if (issuers.has(platform.issuer)) fail(`${key}.issuer`, 'is listed twice');
    issuers.add(platform.issuer);
    for (const [field, value] of [['issuer', platform.issuer], ['jwksUri', platform.jwksUri]] as const) {
      const url = value === undefined ? undefined : parseUrl(value);
      if (value !== undefined && (url === undefined || !isSecureOrLoopback(url))) fail(`${key}.${field}`, 'must be an https URL (http only on loopback)');
    }
    if (platform.algorithms.length === 0) fail(`${key}.algorithms`, 'must list the asymmetric algorithms its tokens use');
    for (const alg of platform.algorithms) {
      // RFC 8725 §3.1: an explicit allow-list of asymmetric algorithms; never none or HS*.
      if (!asymmetricAlgorithms.has(alg)) fail(`${key}.algorithms`, `"${alg}" is not an allowed asymmetric algorithm`);
    }
    if (platform.rules.length === 0) fail(`${key}.rules`, 'must map at least one subject to a client');
    platform.rules.forEach((rule, j) => checkRule(rule, `${key}.rules[${j}]`, scopesOf, clientIds, ruleClients, fail));
  });
  return Object.freeze({ trust: Object.freeze([...(options?.trust ?? [])]), tokenTtlSeconds, maxAssertionLifetimeSeconds });
}

function checkRule(rule: FederationRule, key: string, scopesOf: ReadonlyMap<string, ReadonlySet<string>>, clientIds: ReadonlySet<string>, seen: Set<string>, fail: Fail): void {
  if (rule.subject === '' || rule.subject === '*') fail(`${key}.subject`, 'must name a subject or a pattern narrower than "*"');
  if (!CLIENT_ID.test(rule.clientId)) fail(`${key}.clientId`, 'must be 1-128 characters of A-Z a-z 0-9 . _ : @ -');
  if (seen.has(rule.clientId)) fail(`${key}.clientId`, 'is used by another federation rule');
  if (clientIds.has(rule.clientId)) fail(`${key}.clientId`, 'is the client_id of a static client or an audience');
  seen.add(rule.clientId);
  if (rule.resources.length === 0) fail(`${key}.resources`, 'must list at least one resource');
  if (rule.scopes.length === 0) fail(`${key}.scopes`, 'must list at least one scope');
  for (const resource of rule.resources) {
    if (!scopesOf.has(resource)) fail(`${key}.resources`, `"${resource}" is not a resource of this issuer`);
  }
  for (const scope of rule.scopes) {
    if (!rule.resources.some((r) => scopesOf.get(r)?.has(scope) === true)) fail(`${key}.scopes`, `"${scope}" is not a scope of its resources`);
  }
}
