import type { Environment, RawBreakGlassGrant, RawConfig, RawIssuer, RawUpstream } from './schema.ts';
import { ConfigError, type ConfigProblem } from './errors.ts';
import { lintConfig } from './lint.ts';
import { loadConfigFile, parseConfigText, SchemaError, type LoadedConfig, type Remains } from './load.ts';
import { isSecureOrLoopback, parseUrl, stripTrailingSlash } from './urls.ts';
import { compileRules, type PolicyRule } from '../policy/compile.ts';
import { readPinFile, type PinningConfig } from '../policy/pin-file.ts';
import type { FederationOptions, IssuerOptions } from '../issuer/types.ts';
import { validateIssuerOptions } from '../issuer/options.ts';
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
  /** Every token of this issuer must be bound this way (on top of each upstream's own setting). */
  readonly senderConstraint: SenderConstraint;
  /**
   * README "Break-glass access": tokens of this issuer, or of these clients of it, only through an open
   * grant. Optional so issuers built outside the config (federation trust) need not spell out "none".
   */
  readonly breakGlassOnly?: boolean;
  readonly breakGlassClients?: ReadonlySet<string>;
}

/** A break-glass grant (README "Break-glass access"), its times as epoch milliseconds. */
export interface BreakGlassGrant {
  readonly name: string;
  readonly ticket: string;
  readonly reason: string;
  /** Issuer name, and optionally the client_id, a token must carry to be judged by this grant. */
  readonly issuer: string;
  readonly clientId: string | undefined;
  readonly activatedAtMs: number;
  readonly expiresAtMs: number;
  readonly maxTokenLifetimeSeconds: number;
  readonly upstreams: ReadonlySet<string>;
  readonly scopes: ReadonlySet<string>;
  readonly requireClaims: Readonly<Record<string, readonly string[]>>;
}

export type SenderConstraint = 'dpop' | 'mtls' | 'none';

/** What a token must prove on one upstream, for one issuer: the union of both settings (strictest wins). */
export interface SenderRequirement {
  readonly dpop: boolean;
  readonly mtls: boolean;
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
  /** Whole-body deadline for non-SSE answers, from the headers on. */
  readonly bodyTimeoutMs: number;
  /** SSE idle limit, or undefined (none). */
  readonly sseIdleMs: number | undefined;
  readonly maxInFlight: number;
  readonly maxConnections: number;
  readonly outlierDetection: Readonly<NonNullable<RawUpstream['outlierDetection']>> | undefined;
  readonly tls: Readonly<NonNullable<RawUpstream['tls']>> | undefined;
  /** Rate limits and quotas, in file order; every matching one must allow a call. */
  readonly rateLimits: readonly LimitRule[];
  readonly identity: { readonly claims: readonly string[]; readonly informationalHeaders: boolean };
  /** Tool catalogue pinning; undefined = off. */
  readonly pinning: PinningConfig | undefined;
  /** The upstream's own setting; what a token must prove is `senderRequired` (with its issuer's). */
  readonly senderConstraint: SenderConstraint;
  /** Per issuer name: the upstream's and the issuer's constraints together; a cnf-bound token is checked either way. */
  readonly senderRequired: ReadonlyMap<string, SenderRequirement>;
  /** Every accepted issuer's tokens must be DPoP-bound here (RFC 9728 dpop_bound_access_tokens_required). */
  readonly dpopRequired: boolean;
  /** The gateway can check certificate-bound tokens (RFC 9728 tls_client_certificate_bound_access_tokens). */
  readonly certificateBoundTokens: boolean;
  /** RFC 9449 §7.1 `algs` of the DPoP challenge (the gateway-wide proof allow-list). */
  readonly dpopAlgorithms: readonly string[];
  /** RFC 9728 §3.1 well-known URL for this resource. */
  readonly resourceMetadataUrl: string;
  readonly resourceMetadataPath: string;
}

export interface TracesConfig {
  /** OTLP/HTTP traces URL; undefined = OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly otlpEndpoint: string | undefined;
  readonly serviceName: string;
  readonly sampleRatio: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
}

export interface Config {
  readonly file: string;
  readonly listen: { readonly host: string; readonly port: number; readonly tls: ListenTls | undefined };
  readonly admin: { readonly host: string; readonly port: number };
  /** Traffic processes (`serve --workers` overrides it); fixed for the life of the process. */
  readonly workers: number | 'auto';
  readonly publicUrl: URL;
  readonly issuers: readonly IssuerConfig[];
  readonly upstreams: readonly UpstreamConfig[];
  readonly identity: { readonly header: string; readonly signingKeyFile: string; readonly ttlSeconds: number; readonly signingKeyFileLine: number | undefined };
  readonly limits: Readonly<RawConfig['limits']>;
  readonly rateLimitStore: LimitStoreConfig;
  readonly dpop: DpopConfig;
  readonly mtls: MtlsConfig;
  readonly audit: Readonly<RawConfig['audit']>;
  /** SSF receivers and the revocation store's bounds (README "Revocation"). */
  readonly revocation: RevocationConfig;
  /** The embedded issuer's settings, with the resources it may issue tokens for (every upstream). */
  readonly authorizationServer: IssuerOptions | undefined;
  /** README "Environment profiles": undefined = no profile. */
  readonly environment: Environment | undefined;
  readonly environmentClaim: string;
  readonly breakGlass: readonly BreakGlassGrant[];
  /** OpenTelemetry traces; undefined = off (no SDK loaded). */
  readonly traces: TracesConfig | undefined;
  readonly warnings: readonly ConfigProblem[];
}

export interface ListenTls {
  readonly certFile: string;
  readonly keyFile: string;
  /** RFC 8705: client certificates verified against this CA; undefined = none requested. */
  readonly clientCaFile: string | undefined;
  readonly clientCertificate: 'optional' | 'required';
}

export interface MtlsConfig {
  /** A certificate hash from a header, believed only from these hops (a mesh that terminates TLS). */
  readonly forwarded: { readonly header: string; readonly format: 'xfcc' | 'x5t#S256'; readonly trustedHops: readonly string[] } | undefined;
  /** Whether any source of client certificates is configured (listener CA or forwarded header). */
  readonly enabled: boolean;
}

export interface DpopConfig {
  readonly algorithms: readonly string[];
  readonly proofMaxAgeSeconds: number;
  readonly clockSkewSeconds: number;
  readonly replayCacheEntries: number;
  /** §8 server nonces: absent = not required. */
  readonly nonceRotationSeconds: number | undefined;
}

export function loadConfig(file: string, env?: Readonly<Record<string, string | undefined>>): Config {
  return withEveryProblem(() => loadConfigFile(file, env));
}

export function loadConfigText(text: string, file = 'config.yaml', env?: Readonly<Record<string, string | undefined>>): Config {
  return withEveryProblem(() => parseConfigText(text, file, env));
}

/**
 * One run names every problem (issue 24 §2): when the schema refuses the file, the semantic checks
 * still run over what did parse, and their problems follow the schema's.
 */
function withEveryProblem(load: () => LoadedConfig): Config {
  let loaded: LoadedConfig;
  try {
    loaded = load();
  } catch (err) {
    if (!(err instanceof SchemaError) || err.remains === undefined) throw err;
    // In file order, as an operator fixes them.
    throw new ConfigError([...err.problems, ...semanticProblems(err.remains)].sort((a, b) => (a.line ?? 0) - (b.line ?? 0)));
  }
  return compileLoaded(loaded);
}

function semanticProblems(remains: Remains): ConfigProblem[] {
  const { loaded } = remains;
  try {
    compileLoaded(loaded);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) return [];
    return err.problems.flatMap((p) => {
      const path = remains.original(keyPath(p.key));
      const line = loaded.locate(path);
      // A problem under a value the schema refused, or on a line an unset variable emptied, only echoes it.
      if (remains.removed(path) || remains.skipLines.has(line)) return [];
      return [{ ...p, line, key: path.join('.') }];
    });
  }
}

/** A problem's key (`upstreams.0.scopes.1`) as the path it was made from. */
function keyPath(key: string): (string | number)[] {
  return key === '' ? [] : key.split('.').map((k) => (/^\d+$/.test(k) ? Number(k) : k));
}

function compileLoaded(loaded: LoadedConfig): Config {
  const { errors, warnings } = lintConfig(loaded.raw, loaded.file, loaded.locate);
  if (errors.length > 0) throw new ConfigError([...errors, ...compileProblems(loaded, warnings)]);
  const config = compile(loaded.raw, loaded.file, warnings, loaded.locate);
  checkAuthorizationServer(config, loaded);
  return config;
}

// Conditions and the issuer section are compiled even when lint refused the file, so that their errors
// come in the same run. Compiling what lint refused may fail in other ways; lint's errors stand then.
function compileProblems(loaded: LoadedConfig, warnings: readonly ConfigProblem[]): ConfigProblem[] {
  try {
    checkAuthorizationServer(compile(loaded.raw, loaded.file, warnings, loaded.locate), loaded);
    return [];
  } catch (err) {
    return err instanceof ConfigError ? [...err.problems] : [];
  }
}

/**
 * The embedded issuer's own validation (the one `mcp-warden issuer` runs at start and reload), so that
 * `validate` reports an unusable authorizationServer section with the file, line and key at fault.
 */
function checkAuthorizationServer(config: Config, loaded: LoadedConfig): void {
  if (config.authorizationServer === undefined) return;
  try {
    validateIssuerOptions(config.authorizationServer);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new ConfigError(err.problems.map((p) => {
      const path = issuerKeyPath(p.key);
      return { file: loaded.file, line: loaded.locate(path), key: path.join('.'), message: p.message };
    }));
  }
}

/** An issuer option key (`federation.trust[0].rules[1].scopes`) as a path in the YAML. */
function issuerKeyPath(key: string): (string | number)[] {
  const parts = key.split(/\.|\[(\d+)\]/).filter((k) => k !== undefined && k !== '').map((k) => (/^\d+$/.test(k) ? Number(k) : k));
  // Resources are the upstreams' audiences; host and port come from listen.
  if (parts[0] === 'resources') return ['upstreams', ...parts.slice(1, 2)];
  if (parts[0] === 'host' || parts[0] === 'port') return ['authorizationServer', 'listen', parts[0]];
  return ['authorizationServer', ...parts];
}

function compile(raw: RawConfig, file: string, warnings: readonly ConfigProblem[], locate: LoadedConfig['locate']): Config {
  const keyFileLine = locate(['identity', 'signingKeyFile']);
  // Rule conditions are compiled here, once: a syntax or type error refuses the config with its line.
  const problems: ConfigProblem[] = [];
  const base = stripTrailingSlash(raw.publicUrl);
  const issuers = raw.issuers.map(compileIssuer);
  const byName = new Map(issuers.map((i) => [i.name, i]));
  const dpopAlgorithms = Object.freeze([...raw.dpop.algorithms]);
  const mtls = compileMtls(raw);
  const upstreams = raw.upstreams.map((u, ui) => {
    const problem = (at: readonly (string | number)[], message: string): void => {
      const key = ['upstreams', ui, ...at];
      problems.push({ file, line: locate(key), key: key.join('.'), message });
    };
    return compileUpstream(u, base, byName, { dpopAlgorithms, mtls: mtls.enabled }, problem);
  });
  const revocation = compileRevocation(raw.revocation, byName, base, (at, message) => {
    const key = ['revocation', ...at];
    problems.push({ file, line: locate(key), key: key.join('.'), message });
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    file,
    listen: Object.freeze({ host: raw.listen.host, port: raw.listen.port, tls: raw.listen.tls === undefined ? undefined : Object.freeze({ ...raw.listen.tls, clientCaFile: raw.listen.tls.clientCaFile }) }),
    admin: Object.freeze({ ...raw.admin }),
    workers: raw.workers,
    publicUrl: new URL(base),
    issuers: Object.freeze(issuers),
    upstreams: Object.freeze(upstreams),
    identity: Object.freeze({ ...raw.identity, signingKeyFileLine: keyFileLine }),
    limits: Object.freeze({ ...raw.limits }),
    audit: Object.freeze({ ...raw.audit }),
    rateLimitStore: Object.freeze({ maxEntries: raw.rateLimitStore.maxEntries, redis: raw.rateLimitStore.redis === undefined ? undefined : Object.freeze({ ...raw.rateLimitStore.redis }) }),
    dpop: Object.freeze({
      algorithms: dpopAlgorithms,
      proofMaxAgeSeconds: raw.dpop.proofMaxAgeSeconds,
      clockSkewSeconds: raw.dpop.clockSkewSeconds,
      replayCacheEntries: raw.dpop.replayCacheEntries,
      nonceRotationSeconds: raw.dpop.nonce?.rotationSeconds,
    }),
    mtls,
    authorizationServer: raw.authorizationServer === undefined ? undefined : compileAuthorizationServer(raw.authorizationServer, upstreams, revocation.audience),
    environment: raw.environment,
    environmentClaim: raw.environmentClaim,
    breakGlass: Object.freeze(raw.breakGlass.map(compileBreakGlass)),
    traces: raw.telemetry.traces === undefined ? undefined : Object.freeze({ ...raw.telemetry.traces, otlpEndpoint: raw.telemetry.traces.otlpEndpoint, headers: Object.freeze({ ...raw.telemetry.traces.headers }) }),
    revocation,
    warnings,
  });
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

function compileIssuer(i: RawConfig['issuers'][number]): IssuerConfig {
  return Object.freeze({
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
    senderConstraint: i.senderConstraint,
    breakGlassOnly: i.breakGlassOnly,
    breakGlassClients: new Set(i.breakGlassClients),
  });
}

function compileBreakGlass(g: RawBreakGlassGrant): BreakGlassGrant {
  return Object.freeze({
    name: g.name,
    ticket: g.ticket,
    reason: g.reason,
    issuer: g.issuer,
    clientId: g.clientId,
    activatedAtMs: Date.parse(g.activatedAt),
    expiresAtMs: Date.parse(g.expiresAt),
    maxTokenLifetimeSeconds: g.maxTokenLifetimeSeconds,
    upstreams: new Set(g.upstreams),
    scopes: new Set(g.scopes),
    requireClaims: Object.freeze(Object.fromEntries(Object.entries(g.requireClaims ?? {}).map(([k, v]) => [k, Object.freeze([...v])]))),
  });
}

function compileMtls(raw: RawConfig): MtlsConfig {
  const f = raw.mtls.forwarded;
  const forwarded = f === undefined ? undefined : Object.freeze({ header: f.header.toLowerCase(), format: f.format, trustedHops: Object.freeze([...f.trustedHops]) });
  return Object.freeze({ forwarded, enabled: forwarded !== undefined || raw.listen.tls?.clientCaFile !== undefined });
}

/** Strictest wins: a token must satisfy the upstream's and its issuer's constraint; `none` adds nothing. */
function senderRequirements(u: RawUpstream, issuers: readonly IssuerConfig[]): ReadonlyMap<string, SenderRequirement> {
  return new Map(issuers.map((i) => {
    const both = [u.senderConstraint, i.senderConstraint];
    return [i.name, Object.freeze({ dpop: both.includes('dpop'), mtls: both.includes('mtls') })] as const;
  }));
}

interface SenderSupport {
  readonly dpopAlgorithms: readonly string[];
  readonly mtls: boolean;
}

function compileUpstream(u: RawUpstream, base: string, byName: ReadonlyMap<string, IssuerConfig>, sender: SenderSupport, problem: (at: readonly (string | number)[], message: string) => void): UpstreamConfig {
  const path = stripTrailingSlash(u.path);
  const issuers = Object.freeze(u.issuers.map((n) => byName.get(n) as IssuerConfig));
  const senderRequired = senderRequirements(u, issuers);
  const metadataPath = `/.well-known/oauth-protected-resource${path}`;
  return Object.freeze({
    name: u.name,
    path,
    target: new URL(u.target),
    audience: u.audience ?? base + path,
    issuers,
    scopes: Object.freeze([...u.scopes]),
    clients: u.clients === undefined ? undefined : new Set(u.clients),
    rules: compileRules(u.tools, u.rules, problem),
    defaultAction: u.default,
    allScopes: Object.freeze([...new Set([...u.scopes, ...u.tools.flatMap((t) => t.scopes), ...u.rules.flatMap((r) => r.scopes)])]),
    allowedOrigins: new Set([new URL(base).origin, ...u.allowedOrigins]),
    forwardHeaders: Object.freeze(u.forwardHeaders.map((h) => h.toLowerCase())),
    timeoutMs: u.timeoutMs,
    bodyTimeoutMs: u.bodyTimeoutMs ?? u.timeoutMs,
    sseIdleMs: u.sseIdleSeconds === undefined ? undefined : u.sseIdleSeconds * 1000,
    maxInFlight: u.maxInFlight,
    maxConnections: u.maxConnections,
    outlierDetection: u.outlierDetection === undefined ? undefined : Object.freeze({ ...u.outlierDetection }),
    tls: u.tls === undefined ? undefined : Object.freeze({ ...u.tls }),
    rateLimits: compileLimits(u.rateLimits),
    pinning: pinningOf(u.pinning, (message) => problem(['pinning', 'file'], message)),
    identity: Object.freeze({ claims: Object.freeze([...u.identity.claims]), informationalHeaders: u.identity.informationalHeaders }),
    senderConstraint: u.senderConstraint,
    senderRequired,
    dpopRequired: issuers.length > 0 && [...senderRequired.values()].every((r) => r.dpop),
    certificateBoundTokens: sender.mtls,
    dpopAlgorithms: sender.dpopAlgorithms,
    resourceMetadataUrl: new URL(base).origin + metadataPath,
    resourceMetadataPath: metadataPath,
  });
}

function compileAuthorizationServer(as: NonNullable<RawConfig['authorizationServer']>, upstreams: readonly UpstreamConfig[], receiverAudience: string): NonNullable<Config['authorizationServer']> {
  return Object.freeze({
    ...(as.issuer === undefined ? {} : { issuer: as.issuer }),
    host: as.listen.host,
    port: as.listen.port,
    keysFile: as.keysFile,
    accessTokenTtlSeconds: as.accessTokenTtlSeconds,
    signingAlg: as.signingAlg,
    rotationGraceSeconds: as.rotationGraceSeconds,
    refreshTokenTtlSeconds: as.refreshTokenTtlSeconds,
    registration: as.registration,
    clients: as.clients,
    ...(as.fetch === undefined ? {} : { fetch: as.fetch }),
    ...(as.mtls === undefined ? {} : { mtls: as.mtls }),
    ...(as.federation === undefined ? {} : { federation: compileFederation(as.federation, upstreams) }),
    // The SETs are for this config's gateways: their receiver audience unless named.
    ...(as.ssf === undefined ? {} : { ssf: { ...as.ssf, audience: as.ssf.audience ?? receiverAudience } }),
    // RFC 8707: tokens only for the resources this gateway serves, with their scopes.
    resources: upstreams.map((u) => ({ audience: u.audience, scopes: u.allScopes })),
    });
}

/** Federation rules may name upstreams instead of spelling out their audiences. */
function compileFederation(raw: NonNullable<NonNullable<RawConfig['authorizationServer']>['federation']>, upstreams: readonly UpstreamConfig[]): FederationOptions {
  const audienceOf = new Map(upstreams.map((u) => [u.name, u.audience]));
  return {
    ...raw,
    trust: raw.trust.map((t) => ({ ...t, rules: t.rules.map((r) => ({ ...r, resources: r.resources.map((name) => audienceOf.get(name) ?? name) })) })),
  };
}

// README "Revocation (kill switch)": the SSF receivers of the configured issuers.

export interface PollConfig {
  readonly url: URL;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly maxEvents: number;
  readonly authorizationFile: string | undefined;
}

export interface TransmitterConfig {
  /** The issuer whose tokens these events revoke; SETs carry its iss and are signed with its keys. */
  readonly issuer: IssuerConfig;
  readonly poll: PollConfig | undefined;
  readonly push: { readonly secretFile: string } | undefined;
  readonly staleAfterMs: number;
  readonly failClosed: boolean;
}

export interface RevocationConfig {
  /** RFC 8417 §2.2 aud: the value every SET must name this receiver by. */
  readonly audience: string;
  readonly maxEntries: number;
  readonly maxSeenSets: number;
  readonly transmitters: readonly TransmitterConfig[];
}

/** The revocation section → its frozen runtime form; problems are reported with their key path. */
export function compileRevocation(raw: RawConfig['revocation'], issuers: ReadonlyMap<string, IssuerConfig>, publicUrl: string, problem: (at: readonly (string | number)[], message: string) => void): RevocationConfig {
  const seen = new Set<string>();
  const transmitters = raw.transmitters.flatMap((t, i): TransmitterConfig[] => {
    const at = (...rest: (string | number)[]): (string | number)[] => ['transmitters', i, ...rest];
    const issuer = issuers.get(t.issuer);
    if (issuer === undefined) return problem(at('issuer'), `names no configured issuer (${t.issuer})`), [];
    // SETs are verified with the issuer's JWKS: an introspection-only issuer has none.
    if (issuer.introspection !== undefined) return problem(at('issuer'), 'an introspection issuer has no key set to verify SETs with'), [];
    if (seen.has(t.issuer)) return problem(at('issuer'), 'one transmitter per issuer'), [];
    seen.add(t.issuer);
    if (t.poll === undefined && t.push === undefined) return problem(at(), 'needs poll, push, or both'), [];
    const url = t.poll === undefined ? undefined : parseUrl(t.poll.url);
    if (t.poll !== undefined && (url === undefined || !isSecureOrLoopback(url))) return problem(at('poll', 'url'), 'must be an https URL (http only on loopback)'), [];
    if (t.failClosed && t.poll === undefined) return problem(at('failClosed'), 'needs poll delivery: a push stream cannot tell silence from an outage'), [];
    const poll = t.poll === undefined || url === undefined ? undefined : Object.freeze({ ...t.poll, url, authorizationFile: t.poll.authorizationFile });
    return [Object.freeze({ issuer, poll, push: t.push === undefined ? undefined : Object.freeze({ ...t.push }), staleAfterMs: t.staleAfterSeconds * 1000, failClosed: t.failClosed })];
  });
  return Object.freeze({ audience: raw.audience ?? publicUrl, maxEntries: raw.maxEntries, maxSeenSets: raw.maxSeenSets, transmitters: Object.freeze(transmitters) });
}

