import { asymmetricAlgorithms, DEFAULT_MAX_TOKEN_LIFETIME, type RawConfig } from './schema.ts';
import type { ConfigProblem } from './errors.ts';
import { extraHeaderProblem } from '../identity/request-headers.ts';
import { lintRateLimits } from './lint-limits.ts';
import { BREAK_GLASS_CLAIMS, lintBreakGlass } from './lint-break-glass.ts';
import { lintProfile } from './lint-profile.ts';
import { lintMtls } from './lint-mtls.ts';
import { lintWorkers } from './lint-workers.ts';
import { isSecureOrLoopback, parseUrl, stripTrailingSlash } from './urls.ts';
import { methodIsSound, nameIsSound } from '../policy/names.ts';

type Path = readonly (string | number)[];

const RESERVED_ASSERTION_CLAIMS = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'sub', 'scope', 'client_id', 'orig_iss', 'orig_exp', 'orig_jti', 'cnf', 'sender', 'sender_jkt', 'sender_x5t#S256', ...BREAK_GLASS_CLAIMS]);
export interface LintResult {
  readonly errors: readonly ConfigProblem[];
  readonly warnings: readonly ConfigProblem[];
}

type Report = (path: Path, message: string) => void;

/** What every lint step reads: the raw config, its parsed publicUrl, and where problems go. */
interface Lint {
  readonly raw: RawConfig;
  readonly publicUrl: URL | undefined;
  readonly err: Report;
  readonly warn: Report;
}

type RawUpstream = RawConfig['upstreams'][number];
type RawIssuer = RawConfig['issuers'][number];

// Safety rules the schema cannot express. Each error refuses start; warnings are printed by validate.
export function lintConfig(raw: RawConfig, file: string, locate: (p: Path) => number | undefined, nowMs: number = Date.now()): LintResult {
  const errors: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const err: Report = (path, message) => errors.push({ file, line: locate(path), key: path.join('.'), message });
  const warn: Report = (path, message) => warnings.push({ file, line: locate(path), key: path.join('.'), message });
  const lint: Lint = { raw, publicUrl: lintPublicUrl(raw.publicUrl, err), err, warn };

  const issuerNames = new Set<string>();
  raw.issuers.forEach((iss, i) => {
    if (issuerNames.has(iss.name)) err(['issuers', i, 'name'], `duplicate issuer name "${iss.name}"`);
    issuerNames.add(iss.name);
    lintIssuer(lint, iss, i);
  });

  const audiences = new Map<string, number>();
  const paths: { path: string; index: number }[] = [];
  const upstreamNames = new Set<string>();
  raw.upstreams.forEach((up, i) => {
    if (upstreamNames.has(up.name)) err(['upstreams', i, 'name'], `duplicate upstream name "${up.name}"`);
    upstreamNames.add(up.name);
    const pathProblem = checkPathPrefix(up.path);
    if (pathProblem !== undefined) err(['upstreams', i, 'path'], pathProblem);
    else paths.push({ path: stripTrailingSlash(up.path), index: i });
    lintUpstream(lint, up, i, audiences);
  });

  raw.authorizationServer?.clients.forEach((c, j) => {
    // A plain shared secret in a file never expires and is copied wherever the file goes.
    if (c.client_secret !== undefined) {
      warn(['authorizationServer', 'clients', j, 'client_secret'], 'a static client with a plain secret never rotates it; prefer token_endpoint_auth_method private_key_jwt with jwks or jwks_uri');
    }
  });
  lintPathOverlaps(paths, err);
  lintTraces(raw.telemetry.traces, err, warn);
  lintRateLimits(raw, err, warn);
  lintBreakGlass(raw, err, warn, nowMs);
  lintProfile(raw, err);
  lintMtls(raw, err);
  lintWorkers(raw, err);
  return { errors, warnings };
}

/** publicUrl: an http(s) origin (https unless loopback); every resource URI derives from it. */
function lintPublicUrl(value: string, err: Report): URL | undefined {
  const publicUrl = parseUrl(value);
  if (publicUrl === undefined || (publicUrl.protocol !== 'https:' && publicUrl.protocol !== 'http:')) {
    err(['publicUrl'], 'must be an absolute http(s) URL');
    return undefined;
  }
  if (!isSecureOrLoopback(publicUrl)) err(['publicUrl'], 'must use https unless the host is loopback (RFC 9728 §1.2)');
  if (publicUrl.search !== '' || publicUrl.hash !== '' || publicUrl.username !== '' || publicUrl.password !== '') {
    err(['publicUrl'], 'must not carry a query, fragment or userinfo');
  }
  // Resource URIs and RFC 9728 well-known URLs are derived from the origin plus each upstream path.
  if (publicUrl.pathname !== '/') err(['publicUrl'], 'must be an origin without a path (put the path in each upstream)');
  return publicUrl;
}

function lintIssuer({ publicUrl, err, warn }: Lint, iss: RawIssuer, i: number): void {
  const at = (...k: (string | number)[]): Path => ['issuers', i, ...k];
  checkRemoteUrl(iss.issuer, at('issuer'), err);
  if (iss.jwksUri !== undefined) checkRemoteUrl(iss.jwksUri, at('jwksUri'), err);
  // The gateway's own key set as an issuer's: every assertion it signs would verify as an access token.
  if (iss.jwksUri !== undefined && publicUrl !== undefined && parseUrl(iss.jwksUri)?.href === new URL('/.well-known/jwks.json', publicUrl).href) {
    err(at('jwksUri'), "is the gateway's own key set (publicUrl + /.well-known/jwks.json)");
  }
  if (iss.introspection !== undefined) checkRemoteUrl(iss.introspection.endpoint, at('introspection', 'endpoint'), err);
  if (iss.algorithms === undefined && iss.introspection === undefined) err(at('algorithms'), 'required: an explicit list of asymmetric algorithms (RFC 8725 §3.1)');
  if (iss.introspection !== undefined && iss.jwksUri !== undefined) err(at('jwksUri'), 'an introspection issuer validates tokens at its introspection endpoint; remove jwksUri');
  (iss.algorithms ?? []).forEach((alg, j) => {
    // RFC 8725 §3.1/§3.2: allow-list of asymmetric algorithms only; none and HS* are never accepted.
    if (!asymmetricAlgorithms.has(alg)) {
      err(at('algorithms', j), `"${alg}" is not allowed: use asymmetric algorithms only (${[...asymmetricAlgorithms].join(', ')})`);
    }
  });
  if (iss.jwks.staleIfErrorSeconds > 3_600) warn(at('jwks', 'staleIfErrorSeconds'), 'over an hour of serving stale keys in an outage delays revocation');
  if (iss.jwks.cacheMaxAgeSeconds > 3_600) warn(at('jwks', 'cacheMaxAgeSeconds'), 'over an hour: a removed key keeps verifying that long');
  if (iss.jwks.cacheMaxAgeSeconds < 60) warn(at('jwks', 'cacheMaxAgeSeconds'), 'under a minute: the IdP is asked for keys very often');
  if (iss.jwks.unknownKidIntervalMs < 500) warn(at('jwks', 'unknownKidIntervalMs'), 'under 500 ms: unknown-kid floods reach the IdP often');
  if (iss.clockSkewSeconds > 120) warn(at('clockSkewSeconds'), 'over two minutes of clock skew accepted');
  if (iss.maxTokenLifetimeSeconds > DEFAULT_MAX_TOKEN_LIFETIME) warn(at('maxTokenLifetimeSeconds'), 'tokens living over 24 h are accepted: a stolen token stays usable that long');
  if (iss.introspection !== undefined && iss.scopeClaim !== 'scope') err(at('scopeClaim'), 'introspection answers carry scope (RFC 7662 §2.2); scp applies to JWT issuers only');
}

function lintUpstream(lint: Lint, up: RawUpstream, i: number, audiences: Map<string, number>): void {
  const { raw, err } = lint;
  const at = (...k: (string | number)[]): Path => ['upstreams', i, ...k];
  up.forwardHeaders.forEach((name, h) => {
    const problem = extraHeaderProblem(name, raw.identity.header);
    if (problem !== undefined) err(at('forwardHeaders', h), `"${name}" ${problem}`);
  });
  const target = parseUrl(up.target);
  if (target === undefined || (target.protocol !== 'http:' && target.protocol !== 'https:')) {
    err(at('target'), 'must be an absolute http(s) URL');
  } else if (target.username !== '' || target.password !== '' || target.hash !== '') {
    err(at('target'), 'must not carry userinfo or a fragment');
  }
  if (up.tls !== undefined) {
    if (target !== undefined && target.protocol !== 'https:') err(at('tls'), 'needs an https target');
    if ((up.tls.certFile === undefined) !== (up.tls.keyFile === undefined)) err(at('tls'), 'certFile and keyFile go together (mTLS client certificate)');
  }
  lintAudience(lint, up, i, audiences);
  up.issuers.forEach((name, j) => {
    if (!raw.issuers.some((iss) => iss.name === name)) err(at('issuers', j), `unknown issuer "${name}"`);
  });
  lintScopes(up, at, err);
  lintRules(up, at, err);
  // Held-back tools are released by `mcp-warden pins update`, which writes the pin file.
  if (up.pinning?.onChange === 'block' && up.pinning.file === undefined) err(at('pinning', 'file'), 'onChange: block needs a pin file (released with mcp-warden pins update)');
  up.identity.claims.forEach((c, j) => {
    // The assertion's own claims are set by the gateway; a listed claim may never overwrite them.
    if (RESERVED_ASSERTION_CLAIMS.has(c)) err(at('identity', 'claims', j), `"${c}" is set by the gateway itself`);
  });
  up.clients?.forEach((c, j) => {
    if (c.includes('*')) err(at('clients', j), 'wildcards are not allowed');
  });
  up.allowedOrigins.forEach((o, j) => {
    const url = parseUrl(o);
    if (o.includes('*')) err(at('allowedOrigins', j), 'wildcards are not allowed');
    else if (url === undefined || url.origin !== o) err(at('allowedOrigins', j), 'must be an origin: scheme://host[:port]');
  });
}

/** RFC 8707 §2: one absolute audience per upstream, never shared with another (a token would replay). */
function lintAudience({ raw, publicUrl, err }: Lint, up: RawUpstream, i: number, audiences: Map<string, number>): void {
  const audience = up.audience ?? (publicUrl === undefined ? undefined : stripTrailingSlash(raw.publicUrl) + stripTrailingSlash(up.path));
  if (audience === undefined) {
    err(['upstreams', i, 'audience'], 'no audience: set audience or a valid publicUrl');
    return;
  }
  const aud = parseUrl(audience);
  // An absolute URI without fragment; a wildcard would accept any token.
  if (audience.includes('*')) err(['upstreams', i, 'audience'], 'wildcards are not allowed');
  else if (aud === undefined || aud.hash !== '') err(['upstreams', i, 'audience'], 'must be an absolute URI without fragment (RFC 8707 §2)');
  const seen = audiences.get(audience);
  if (seen !== undefined) err(['upstreams', i, 'audience'], `same audience as upstreams[${seen}]: a token would replay across both`);
  audiences.set(audience, i);
}

function lintScopes(up: RawUpstream, at: (...k: (string | number)[]) => Path, err: Report): void {
  const scopeChecks: [readonly string[], Path][] = [
    [up.scopes, at('scopes')],
    ...up.tools.map((t, j): [readonly string[], Path] => [t.scopes, at('tools', j, 'scopes')]),
    ...up.rules.map((r, j): [readonly string[], Path] => [r.scopes, at('rules', j, 'scopes')]),
  ];
  for (const [scopes, path] of scopeChecks) {
    scopes.forEach((s, j) => {
      // RFC 6749 §3.3 scope-token: printable ASCII without space, quote or backslash.
      if (!/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(s)) err([...path, j], `"${s}" is not a valid scope token`);
    });
  }
}

function lintRules(up: RawUpstream, at: (...k: (string | number)[]) => Path, err: Report): void {
  up.tools.forEach((t, j) => {
    if (!/^[A-Za-z0-9_*.\/-]+$/.test(t.name)) err(at('tools', j, 'name'), 'tool names use letters, digits, _ . / - and * as a wildcard');
    if (t.deny && (t.scopes.length > 0 || t.claims !== undefined)) err(at('tools', j, 'deny'), 'a deny rule takes no scopes or claims');
  });
  up.rules.forEach((r, j) => {
    if (!/^[A-Za-z0-9_*\/.-]+$/.test(r.method)) err(at('rules', j, 'method'), 'a JSON-RPC method name or glob (tools/call, tools/*, *)');
    // Requests with such a method are refused before any rule is read (policy/names.ts): the rule would never apply.
    else if (!methodIsSound(r.method.replaceAll('*', 'x'))) err(at('rules', j, 'method'), 'outside MCP\'s method grammar or not spelt as MCP spells it (logging/setLevel, notifications/roots/list_changed)');
    for (const key of ['tool', 'prompt', 'resource'] as const) {
      const name = r[key];
      if (name !== undefined && !nameIsSound(name)) err(at('rules', j, key), 'contains control, zero-width, bidi or edge white-space characters: no request with such a name is judged');
    }
    // A target only means something for the method that carries it; elsewhere it would never match.
    const fits = (method: string): boolean => r.method === method || r.method === '*' || r.method === method.split('/')[0] + '/*';
    if (r.tool !== undefined && !fits('tools/call')) err(at('rules', j, 'tool'), 'tool applies to method tools/call only');
    if (r.prompt !== undefined && !fits('prompts/get')) err(at('rules', j, 'prompt'), 'prompt applies to method prompts/get only');
    if (r.resource !== undefined && !fits('resources/read')) err(at('rules', j, 'resource'), 'resource applies to method resources/read only');
    if ([r.tool, r.prompt, r.resource].filter((x) => x !== undefined).length > 1) err(at('rules', j), 'name one of tool, prompt or resource');
    if (r.deny && (r.scopes.length > 0 || r.claims !== undefined)) err(at('rules', j, 'deny'), 'a deny rule takes no scopes or claims');
  });
}

/** The OTLP endpoint: a URL the exporter can post to; collector credentials go over TLS beyond loopback. */
function lintTraces(traces: RawConfig['telemetry']['traces'], err: Report, warn: Report): void {
  if (traces?.otlpEndpoint === undefined) return;
  const at: Path = ['telemetry', 'traces', 'otlpEndpoint'];
  const url = parseUrl(traces.otlpEndpoint);
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) err(at, 'must be an absolute http(s) URL (OTLP/HTTP, e.g. http://127.0.0.1:4318/v1/traces)');
  else if (url.username !== '' || url.password !== '') err(at, 'must not carry userinfo: put a collector credential in headers');
  else if (!isSecureOrLoopback(url) && Object.keys(traces.headers).length > 0) warn(at, 'plain http beyond loopback sends the configured headers in the clear: use https');
}

/** Each MCP server owns one endpoint: nested or case-variant prefixes make the route depend on details. */
function lintPathOverlaps(paths: readonly { path: string; index: number }[], err: Report): void {
  for (const a of paths) {
    for (const b of paths) {
      if (a.index >= b.index) continue;
      const la = a.path.toLowerCase();
      const lb = b.path.toLowerCase();
      if (la === lb || lb.startsWith(la + '/') || la.startsWith(lb + '/') || la === '/' || lb === '/') {
        err(['upstreams', b.index, 'path'], `overlaps upstreams[${a.index}].path "${a.path}" ambiguously`);
      }
    }
  }
}

function checkRemoteUrl(value: string, path: Path, err: Report): void {
  const url = parseUrl(value);
  if (value.includes('*')) err(path, 'wildcards are not allowed');
  else if (url === undefined) err(path, 'must be an absolute URL');
  else if (!isSecureOrLoopback(url)) err(path, 'must use https unless the host is loopback');
  else if (url.hash !== '' || url.username !== '' || url.password !== '') err(path, 'must not carry userinfo or a fragment');
}

function checkPathPrefix(path: string): string | undefined {
  if (!path.startsWith('/')) return 'must start with /';
  if (path === '/') return 'must name a path below / (the gateway serves /.well-known itself)';
  if (path.startsWith('/.well-known')) return 'must not be under /.well-known';
  if (!/^[A-Za-z0-9\/_.~-]+$/.test(path)) return 'use unreserved characters only (no %, ;, \\, * or spaces)';
  if (path.includes('//')) return 'must not contain //';
  if (path.split('/').some((seg) => seg === '.' || seg === '..')) return 'must not contain dot segments';
  return undefined;
}
