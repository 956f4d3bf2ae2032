import type { RawConfig, RawIssuer, RawUpstream } from './schema.ts';
import { ConfigError, type ConfigProblem } from './errors.ts';
import { lintConfig } from './lint.ts';
import { loadConfigFile, parseConfigText, type LoadedConfig } from './load.ts';
import { stripTrailingSlash } from './urls.ts';
import { compileRules, type PolicyRule } from '../policy/compile.ts';
import { readPinFile, type PinningConfig } from '../policy/pins.ts';
import type { IssuerOptions } from '../issuer/types.ts';
import { compileLimits, type LimitRule } from '../limits/rules.ts';
import type { LimitStoreConfig } from '../limits/store.ts';

export interface IssuerConfig {
  readonly name: string;
  readonly issuer: string;
  readonly jwksUri: string | undefined;
  readonly algorithms: readonly string[];
  readonly clockSkewSeconds: number;
  readonly maxTokenAgeSeconds: number | undefined;
  readonly maxTokenLifetimeSeconds: number;
  readonly typ: 'at+jwt' | undefined;
  readonly scopeClaim: 'scope' | 'scp';
  readonly jwks: Readonly<RawIssuer['jwks']>;
  readonly introspection: Readonly<NonNullable<RawIssuer['introspection']>> | undefined;
}


export interface UpstreamConfig {
  readonly name: string;
  /** Public path prefix, without trailing slash. */
  readonly path: string;
  readonly target: URL;
  /** RFC 8707 resource identifier: the exact value `aud` must contain and PRM `resource` shows. */
  readonly audience: string;
  readonly issuers: readonly IssuerConfig[];
  readonly scopes: readonly string[];
  readonly clients: ReadonlySet<string> | undefined;
  /** Policy rules in evaluation order (tools entries, then rules). */
  readonly rules: readonly PolicyRule[];
  readonly defaultAction: 'allow' | 'deny';
  /** Every scope any rule of this upstream can ask for (RFC 9728 scopes_supported). */
  readonly allScopes: readonly string[];
  readonly allowedOrigins: ReadonlySet<string>;
  /** Extra request header names (lowercase) forwarded from the client, beyond the allow-list. */
  readonly forwardHeaders: readonly string[];
  readonly timeoutMs: number;
  readonly tls: Readonly<NonNullable<RawUpstream['tls']>> | undefined;
  /** Rate limits and quotas, in file order; every matching one must allow a call. */
  readonly rateLimits: readonly LimitRule[];
  readonly identity: { readonly claims: readonly string[]; readonly informationalHeaders: boolean };
  /** Tool catalogue pinning; undefined = off. */
  readonly pinning: PinningConfig | undefined;
  /** RFC 9728 §3.1 well-known URL for this resource. */
  readonly resourceMetadataUrl: string;
  readonly resourceMetadataPath: string;
}

export interface Config {
  readonly file: string;
  readonly listen: { readonly host: string; readonly port: number; readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined };
  readonly admin: { readonly host: string; readonly port: number };
  readonly publicUrl: URL;
  readonly issuers: readonly IssuerConfig[];
  readonly upstreams: readonly UpstreamConfig[];
  readonly identity: { readonly header: string; readonly signingKeyFile: string; readonly ttlSeconds: number; readonly signingKeyFileLine: number | undefined };
  readonly limits: Readonly<RawConfig['limits']>;
  readonly rateLimitStore: LimitStoreConfig;
  /** The embedded issuer's settings, with the resources it may issue tokens for (every upstream). */
  readonly authorizationServer: IssuerOptions | undefined;
  readonly warnings: readonly ConfigProblem[];
}

export function loadConfig(file: string, env?: Readonly<Record<string, string | undefined>>): Config {
  return compileLoaded(loadConfigFile(file, env));
}

export function loadConfigText(text: string, file = 'config.yaml', env?: Readonly<Record<string, string | undefined>>): Config {
  return compileLoaded(parseConfigText(text, file, env));
}

function compileLoaded(loaded: LoadedConfig): Config {
  const { errors, warnings } = lintConfig(loaded.raw, loaded.file, loaded.locate);
  if (errors.length > 0) throw new ConfigError(errors);
  return compile(loaded.raw, loaded.file, warnings, loaded.locate);
}

function pinningOf(raw: RawUpstream['pinning'], problem: (message: string) => void): PinningConfig | undefined {
  if (raw === undefined) return undefined;
  if (raw.file !== undefined) {
    try {
      readPinFile(raw.file);
    } catch (err) {
      problem((err as Error).message);
    }
  }
  return Object.freeze({ onChange: raw.onChange, file: raw.file, unlistedTools: raw.unlistedTools });
}

function compile(raw: RawConfig, file: string, warnings: readonly ConfigProblem[], locate: LoadedConfig['locate']): Config {
  const keyFileLine = locate(['identity', 'signingKeyFile']);
  // Rule conditions are compiled here, once: a syntax or type error refuses the config with its line.
  const problems: ConfigProblem[] = [];
  const base = stripTrailingSlash(raw.publicUrl);
  const issuers = raw.issuers.map((i): IssuerConfig => Object.freeze({
    name: i.name,
    issuer: i.issuer,
    jwksUri: i.jwksUri,
    algorithms: Object.freeze([...(i.algorithms ?? [])]),
    clockSkewSeconds: i.clockSkewSeconds,
    maxTokenAgeSeconds: i.maxTokenAgeSeconds,
    maxTokenLifetimeSeconds: i.maxTokenLifetimeSeconds,
    typ: i.typ,
    scopeClaim: i.scopeClaim,
    jwks: Object.freeze({ ...i.jwks }),
    introspection: i.introspection === undefined ? undefined : Object.freeze({ ...i.introspection }),
  }));
  const byName = new Map(issuers.map((i) => [i.name, i]));
  const upstreams = raw.upstreams.map((u, ui): UpstreamConfig => {
    const path = stripTrailingSlash(u.path);
    const ruleProblem = (at: readonly (string | number)[], message: string): void => {
      const key = ['upstreams', ui, ...at];
      problems.push({ file, line: locate(key), key: key.join('.'), message });
    };
    const metadataPath = `/.well-known/oauth-protected-resource${path}`;
    return Object.freeze({
      name: u.name,
      path,
      target: new URL(u.target),
      audience: u.audience ?? base + path,
      issuers: Object.freeze(u.issuers.map((n) => byName.get(n) as IssuerConfig)),
      scopes: Object.freeze([...u.scopes]),
      clients: u.clients === undefined ? undefined : new Set(u.clients),
      rules: compileRules(u.tools, u.rules, ruleProblem),
      defaultAction: u.default,
      allScopes: Object.freeze([...new Set([...u.scopes, ...u.tools.flatMap((t) => t.scopes), ...u.rules.flatMap((r) => r.scopes)])]),
      allowedOrigins: new Set([new URL(base).origin, ...u.allowedOrigins]),
      forwardHeaders: Object.freeze(u.forwardHeaders.map((h) => h.toLowerCase())),
      timeoutMs: u.timeoutMs,
      tls: u.tls === undefined ? undefined : Object.freeze({ ...u.tls }),
      rateLimits: compileLimits(u.rateLimits),
      pinning: pinningOf(u.pinning, (message) => ruleProblem(['pinning', 'file'], message)),
      identity: Object.freeze({ claims: Object.freeze([...u.identity.claims]), informationalHeaders: u.identity.informationalHeaders }),
      resourceMetadataUrl: new URL(base).origin + metadataPath,
      resourceMetadataPath: metadataPath,
    });
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    file,
    listen: Object.freeze({ host: raw.listen.host, port: raw.listen.port, tls: raw.listen.tls === undefined ? undefined : Object.freeze({ ...raw.listen.tls }) }),
    admin: Object.freeze({ ...raw.admin }),
    publicUrl: new URL(base),
    issuers: Object.freeze(issuers),
    upstreams: Object.freeze(upstreams),
    identity: Object.freeze({ ...raw.identity, signingKeyFileLine: keyFileLine }),
    limits: Object.freeze({ ...raw.limits }),
    rateLimitStore: Object.freeze({ maxEntries: raw.rateLimitStore.maxEntries, redis: raw.rateLimitStore.redis === undefined ? undefined : Object.freeze({ ...raw.rateLimitStore.redis }) }),
    authorizationServer: raw.authorizationServer === undefined ? undefined : Object.freeze({
      ...(raw.authorizationServer.issuer === undefined ? {} : { issuer: raw.authorizationServer.issuer }),
      host: raw.authorizationServer.listen.host,
      port: raw.authorizationServer.listen.port,
      keysFile: raw.authorizationServer.keysFile,
      accessTokenTtlSeconds: raw.authorizationServer.accessTokenTtlSeconds,
      signingAlg: raw.authorizationServer.signingAlg,
      rotationGraceSeconds: raw.authorizationServer.rotationGraceSeconds,
      registration: raw.authorizationServer.registration,
      clients: raw.authorizationServer.clients,
      // RFC 8707: tokens only for the resources this gateway serves, with their scopes.
      resources: upstreams.map((u) => ({ audience: u.audience, scopes: u.allScopes })),
    }),
    warnings,
  });
}
