import { z } from 'zod';

// The YAML contract (ARCHITECTURE.md "Public contract"). Every object is strict: an unknown key is a
// ConfigError, so a misspelt security setting can never be silently ignored.

const ASYMMETRIC_ALGORITHMS = [
  'ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA', 'Ed25519',
] as const;
export type Algorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];
export const asymmetricAlgorithms: ReadonlySet<string> = new Set(ASYMMETRIC_ALGORITHMS);

/** 24 h: the default ceiling on a token's lifetime, and the level above which validate warns. */
export const DEFAULT_MAX_TOKEN_LIFETIME = 86_400;
/** 7 days: maxTokenLifetimeSeconds may never be raised beyond this. */
export const MAX_TOKEN_LIFETIME_CEILING = 7 * 86_400;

/** README "Environment profiles": what each profile refuses at start. */
export const ENVIRONMENTS = ['production', 'staging', 'development'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

/** Break-glass access may never stay open longer than 72 h (README "Break-glass access"). */
export const BREAK_GLASS_MAX_WINDOW_CEILING = 72 * 3_600;
/** 1 h: the longest token lifetime a production profile accepts from any issuer, unless set lower. */
export const PRODUCTION_MAX_TOKEN_LIFETIME = 3_600;

const port = z.number().int().min(0).max(65535);
const listener = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: port,
});

// TLS on the traffic listener; the files are re-read when they change (certificate renewal).
const serverTls = z.strictObject({
  certFile: z.string().min(1),
  keyFile: z.string().min(1),
  // RFC 8705: client certificates are requested and verified against this CA (PEM); a certificate-bound
  // token must then match the one presented. Absent = no client certificates.
  clientCaFile: z.string().min(1).optional(),
  // `optional`: a client without a certificate may still connect (Bearer and DPoP tokens work, a
  // certificate-bound one is refused); `required`: the TLS handshake refuses such a client.
  clientCertificate: z.enum(['optional', 'required']).default('optional'),
});

// RFC 8705 §3 / §5 sender constraints: `dpop` (RFC 9449), `mtls` (certificate-bound), or none.
const senderConstraint = z.enum(['dpop', 'mtls', 'none']).default('none');

// TLS (and optionally mTLS) from the gateway to an upstream.
const upstreamTls = z.strictObject({
  caFile: z.string().min(1).optional(),
  certFile: z.string().min(1).optional(),
  keyFile: z.string().min(1).optional(),
  serverName: z.string().min(1).optional(),
});

const jwksOptions = z.strictObject({
  cacheMaxAgeSeconds: z.number().int().min(1).max(86_400).default(600),
  // Per kid: a kid a refetch did not find is refused without another fetch for this long.
  cooldownSeconds: z.number().int().min(1).max(3_600).default(30),
  // The IdP sees at most one unknown-kid refetch per this interval, whatever the kids (issue 17 §1).
  unknownKidIntervalMs: z.number().int().min(100).max(60_000).default(1_000),
  // Failed fetches are retried with jittered exponential back-off up to this (issue 17 §3).
  retryMaxSeconds: z.number().int().min(2).max(600).default(10),
  staleIfErrorSeconds: z.number().int().min(0).max(86_400).default(300),
  timeoutMs: z.number().int().min(100).max(60_000).default(5_000),
  maxBytes: z.number().int().min(1_024).max(4 * 1024 * 1024).default(512 * 1024),
});

const introspection = z.strictObject({
  endpoint: z.string().min(1),
  clientId: z.string().min(1),
  clientSecret: z.string().min(1),
  cacheTtlSeconds: z.number().int().min(0).max(300).default(60),
  timeoutMs: z.number().int().min(100).max(60_000).default(5_000),
});

const issuer = z.strictObject({
  name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'letters, digits, _ or - (at most 64)'),
  issuer: z.string().min(1),
  jwksUri: z.string().min(1).optional(),
  // No default: an explicit asymmetric allow-list is required (RFC 8725 §3.1), unless the issuer's
  // tokens are validated by introspection only (lint enforces one or the other).
  algorithms: z.array(z.string()).min(1).optional(),
  clockSkewSeconds: z.number().int().min(0).max(300).default(30),
  maxTokenAgeSeconds: z.number().int().min(1).max(30 * 86_400).optional(),
  // Longest lifetime accepted (exp − iat, or exp − now without iat). Short-lived tokens are the
  // mission; the hard ceiling keeps this from becoming an escape hatch (lint warns above the default).
  maxTokenLifetimeSeconds: z.number().int().min(1).max(MAX_TOKEN_LIFETIME_CEILING).default(DEFAULT_MAX_TOKEN_LIFETIME),
  // RFC 9068 §2.1: when set, the JWS header typ must be at+jwt (or application/at+jwt).
  typ: z.literal('at+jwt').optional(),
  // The one claim scopes are read from: RFC 9068 §2.2.3 `scope` (string), or `scp` (array or
  // space-delimited string) for IdPs that use it. Never both: the other claim is ignored.
  scopeClaim: z.enum(['scope', 'scp']).default('scope'),
  jwks: jwksOptions.prefault({}),
  introspection: introspection.optional(),
  // The environments whose tokens this issuer mints (README "Environment profiles"); absent = any.
  // Checked against the file's top-level `environment`: a development issuer never serves production.
  environments: z.array(z.enum(ENVIRONMENTS)).min(1).optional(),
  // README "Break-glass access": this issuer's tokens (or those of the listed clients) are refused unless
  // an open breakGlass grant admits them, so removing or expiring a grant never turns them into ordinary tokens.
  breakGlassOnly: z.boolean().default(false),
  breakGlassClients: z.array(z.string().min(1)).default([]),
  // Every token of this issuer must be sender-constrained this way, on every upstream; combined with
  // the upstream's own setting, both apply (README "Sender-constrained tokens").
  senderConstraint,
});

const toolRule = z.strictObject({
  name: z.string().min(1),
  scopes: z.array(z.string().min(1)).default([]),
  claims: z.record(z.string(), z.array(z.string().min(1)).min(1)).optional(),
  deny: z.boolean().default(false),
  // A CEL condition (README "Conditions"): the rule applies only to calls for which it is true.
  when: z.string().min(1).optional(),
});

// One policy rule (README "Policy"): which JSON-RPC calls it matches, and what they need.
const rule = z.strictObject({
  method: z.string().min(1),
  tool: z.string().min(1).optional(),
  prompt: z.string().min(1).optional(),
  resource: z.string().min(1).optional(), // URI prefix
  scopes: z.array(z.string().min(1)).default([]),
  claims: z.record(z.string(), z.array(z.string().min(1)).min(1)).optional(),
  deny: z.boolean().default(false),
  when: z.string().min(1).optional(),
});

// A rate limit or quota (README "Rate limits and quotas"): a token bucket (rate + burst) or a fixed
// window quota (quota + windowSeconds), exactly one of the two.
const NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const rateLimit = z.strictObject({
  name: z.string().regex(NAME, 'letters, digits, _ or - (at most 64)'),
  method: z.string().min(1).default('*'),
  tool: z.string().min(1).optional(),
  // Keyed by iss + sub + client_id unless a verified claim is named (e.g. a tenant).
  claim: z.string().regex(/^[A-Za-z0-9_:.-]{1,64}$/).optional(),
  rate: z.number().int().min(1).max(1_000_000).optional(),
  perSeconds: z.number().int().min(1).max(86_400).default(1),
  burst: z.number().int().min(1).max(1_000_000).optional(),
  quota: z.number().int().min(1).max(100_000_000).optional(),
  windowSeconds: z.number().int().min(1).max(30 * 86_400).optional(),
}).superRefine((l, ctx) => {
  const bucket = l.rate !== undefined || l.burst !== undefined;
  const window = l.quota !== undefined || l.windowSeconds !== undefined;
  if (bucket === window) ctx.addIssue({ code: 'custom', message: 'a limit is either a token bucket (rate, burst) or a quota (quota, windowSeconds)', path: [] });
  else if (bucket && l.rate === undefined) ctx.addIssue({ code: 'custom', message: 'a token bucket needs a rate', path: ['rate'] });
  else if (window && (l.quota === undefined || l.windowSeconds === undefined)) ctx.addIssue({ code: 'custom', message: 'a quota needs both quota and windowSeconds', path: [l.quota === undefined ? 'quota' : 'windowSeconds'] });
});

// Where the buckets live: this process (default), or Redis/Valkey shared by every replica.
const rateLimitStore = z.strictObject({
  maxEntries: z.number().int().min(1_000).max(10_000_000).default(100_000),
  redis: z.strictObject({
    url: z.string().min(1), // redis:// or rediss://; credentials through ${ENV}
    keyPrefix: z.string().regex(/^[A-Za-z0-9_:.-]{0,64}$/).default('mcp-warden:'),
    timeoutMs: z.number().int().min(5).max(5_000).default(100),
    // Required, no default: the fallback divides every limit by it, and a guess of 1 would multiply them.
    replicas: z.number().int().min(1).max(1_000),
  }).optional(),
});

const upstream = z.strictObject({
  name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'letters, digits, _ or - (at most 64)'),
  path: z.string().min(1),
  target: z.string().min(1),
  audience: z.string().min(1).optional(),
  issuers: z.array(z.string().min(1)).min(1),
  scopes: z.array(z.string().min(1)).default([]),
  // RFC 9068 client_id / azp allow-list; absent = any client of the accepted issuers.
  clients: z.array(z.string().min(1)).min(1).optional(),
  tools: z.array(toolRule).default([]),
  rules: z.array(rule).default([]),
  // For a JSON-RPC method or tool that no rule names: allow (the upstream scopes suffice) or deny.
  default: z.enum(['allow', 'deny']).default('allow'),
  // Origin values accepted besides the gateway's own publicUrl origin (MCP transports, DNS rebinding).
  allowedOrigins: z.array(z.string().min(1)).default([]),
  // Request headers this upstream needs beyond the gateway's allow-list (checked by lint: never a
  // credential, identity, framing or routing header).
  forwardHeaders: z.array(z.string().min(1)).default([]),
  timeoutMs: z.number().int().min(100).max(600_000).default(30_000),
  // A non-SSE answer must be complete this long after its headers (default: timeoutMs), else 504 / cut.
  bodyTimeoutMs: z.number().int().min(100).max(3_600_000).optional(),
  // An SSE stream silent this long (no byte from the upstream) is ended; absent = no idle limit.
  sseIdleSeconds: z.number().int().min(1).max(86_400).optional(),
  // Requests (not GET streams) in flight to this upstream; past it 503 upstream_busy + Retry-After.
  maxInFlight: z.number().int().min(1).max(100_000).default(512),
  // Sockets the gateway opens to this upstream for requests (GET streams have their own pool).
  maxConnections: z.number().int().min(1).max(10_000).default(128),
  // Passive outlier detection, off unless set: taken out after this many failures in a row (503 meanwhile).
  outlierDetection: z.strictObject({
    consecutiveFailures: z.number().int().min(1).max(1_000).default(5),
    ejectSeconds: z.number().int().min(1).max(3_600).default(10),
    maxEjectSeconds: z.number().int().min(1).max(86_400).default(300),
  }).optional(),
  tls: upstreamTls.optional(),
  rateLimits: z.array(rateLimit).default([]),
  // `dpop` (RFC 9449): every token DPoP-bound and proven with a proof; `mtls` (RFC 8705): every token
  // bound to the client certificate presented. Combined with the issuer's setting, both apply; a token
  // that carries `cnf` is checked whatever this says (README "Sender-constrained tokens").
  senderConstraint,
  // Tool catalogue pinning (README "Pinned tool catalogues"); absent = off.
  pinning: z.strictObject({
    onChange: z.enum(['report', 'block']).default('report'),
    file: z.string().min(1).optional(),
    unlistedTools: z.enum(['allow', 'deny']).default('allow'),
  }).optional(),
  identity: z.strictObject({
    // Further verified claims copied into this upstream's assertion (e.g. email, groups, tenant).
    claims: z.array(z.string().regex(/^[A-Za-z0-9_:.-]{1,64}$/)).default([]),
    // Plain X-MCP-Subject / X-MCP-Client-Id / X-MCP-Scopes beside the assertion, always set by us.
    informationalHeaders: z.boolean().default(false),
  }).prefault({}),
});

const identity = z.strictObject({
  header: z.string().regex(/^[A-Za-z0-9-]{1,64}$/).default('X-MCP-Identity'),
  signingKeyFile: z.string().min(1),
  ttlSeconds: z.number().int().min(5).max(300).default(60),
});

// The embedded authorization server (`mcp-warden issuer`, the demo): single node, loopback or behind TLS.
const authorizationServer = z.strictObject({
  issuer: z.string().min(1).optional(),
  listen: listener.prefault({ port: 9400 }),
  keysFile: z.string().min(1),
  accessTokenTtlSeconds: z.number().int().min(1).max(3_600).default(300),
  signingAlg: z.enum(['ES256', 'EdDSA']).default('ES256'),
  rotationGraceSeconds: z.number().int().min(0).max(86_400).default(60),
  // Absolute lifetime of a refresh-token family; every use rotates the token, none extends this.
  refreshTokenTtlSeconds: z.number().int().min(1).max(30 * 86_400).default(86_400),
  registration: z.strictObject({
    initialAccessToken: z.string().min(1).optional(),
    // RFC 7591 client_secret_expires_at of dynamically registered clients; there is no "never".
    clientSecretTtlSeconds: z.number().int().min(1).max(365 * 86_400).default(30 * 86_400),
  }).prefault({}),
  clients: z.array(z.strictObject({
    client_id: z.string().min(1),
    client_secret: z.string().min(1).optional(),
    grant_types: z.array(z.string().min(1)).min(1),
    redirect_uris: z.array(z.string().min(1)).optional(),
    scope: z.string().optional(),
    token_endpoint_auth_method: z.string().min(1).optional(),
    // RFC 7523 client authentication (private_key_jwt): the client's public keys, inline or by URL.
    jwks: z.strictObject({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }).optional(),
    jwks_uri: z.string().min(1).optional(),
    token_endpoint_auth_signing_alg: z.string().min(1).optional(),
    // RFC 8705 §3: tokens bound to the client certificate presented on the mTLS listener (needs `mtls`).
    tls_client_certificate_bound_access_tokens: z.boolean().optional(),
  })).default([]),
  // RFC 8705 §5: a second TLS listener asking for client certificates (verified against clientCaFile);
  // its token endpoint issues certificate-bound tokens (README "Certificate-bound tokens").
  mtls: z.strictObject({
    port: port.default(0),
    certFile: z.string().min(1),
    keyFile: z.string().min(1),
    clientCaFile: z.string().min(1),
  }).optional(),
  // Outbound fetches (Client ID Metadata Documents, client jwks_uri) never reach private, link-local or
  // loopback addresses, except these hosts (a private network's own clients), trusted with caFile.
  fetch: z.strictObject({ privateHosts: z.array(z.string().min(1)).default([]), caFile: z.string().min(1).optional() }).optional(),
  // SSF transmitter (README "Revocation"): revocations as CAEP SETs on an RFC 8936 poll endpoint.
  ssf: z.strictObject({
    audience: z.string().min(1).optional(), // default: revocation.audience
    pollSecretFile: z.string().min(1),
    adminSecretFile: z.string().min(1),
    retentionSeconds: z.number().int().min(1).max(7 * 86_400).optional(),
  }).optional(),
  // Workload identity federation (RFC 7523 §2.1): platform tokens exchanged for short access tokens.
  federation: z.strictObject({
    tokenTtlSeconds: z.number().int().min(1).max(300).default(300),
    maxAssertionLifetimeSeconds: z.number().int().min(1).max(600).default(600),
    trust: z.array(z.strictObject({
      name: z.string().min(1),
      issuer: z.string().min(1),
      jwksUri: z.string().min(1).optional(),
      algorithms: z.array(z.string().min(1)).min(1),
      audience: z.string().min(1).optional(),
      clockSkewSeconds: z.number().int().min(0).max(300).optional(),
      jwks: z.strictObject({
        cacheMaxAgeSeconds: z.number().int().min(1).max(86_400).optional(),
        cooldownSeconds: z.number().int().min(0).max(3_600).optional(),
        staleIfErrorSeconds: z.number().int().min(0).max(86_400).optional(),
        timeoutMs: z.number().int().min(100).max(60_000).optional(),
      }).optional(),
      rules: z.array(z.strictObject({
        subject: z.string().min(1),
        claims: z.record(z.string(), z.string()).optional(),
        clientId: z.string().min(1),
        scopes: z.array(z.string().min(1)).min(1),
        // Upstream names or audiences; names are resolved to their audiences at compile.
        resources: z.array(z.string().min(1)).min(1),
      })).min(1),
    })).min(1),
  }).optional(),
});

// ISO 8601 with a date, a time and an explicit offset: a break-glass window never depends on the host's zone.
const instant = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/, 'an ISO 8601 time with an offset, e.g. 2026-12-01T22:00:00Z')
  .refine((v) => Number.isFinite(Date.parse(v)), 'not a valid time');

// Emergency access as a governed path (README "Break-glass access"): a named, ticketed, time-boxed grant
// for tokens of one issuer, or of one client of it. Such tokens pass every normal check and, in addition, these.
const breakGlassGrant = z.strictObject({
  name: z.string().regex(NAME, 'letters, digits, _ or - (at most 64)'),
  ticket: z.string().regex(/^[\x21-\x7e]{1,128}$/, 'a ticket id: visible ASCII, no spaces (at most 128)'),
  reason: z.string().min(1).max(1_000),
  // The issuer (by name) and optionally one of its clients: a client_id means something only with its issuer.
  issuer: z.string().min(1),
  clientId: z.string().min(1).optional(),
  activatedAt: instant,
  expiresAt: instant,
  // exp − iat of every token used through the grant; iat is required.
  maxTokenLifetimeSeconds: z.number().int().min(1).max(3_600).default(900),
  upstreams: z.array(z.string().min(1)).min(1),
  // Every scope the token carries must be one of these.
  scopes: z.array(z.string().min(1)).min(1),
  // Claim → accepted values: a string claim must be one of them, an array claim must contain one (amr).
  requireClaims: z.record(z.string().regex(/^[A-Za-z0-9_:.-]{1,64}$/), z.array(z.string().min(1)).min(1)).optional(),
});

// RFC 9449 proof checks, for every upstream (a cnf-bound token is always checked).
const dpop = z.strictObject({
  // §4.3 check 5: asymmetric algorithms only, the allow-list advertised in `algs` and RFC 9728 metadata.
  algorithms: z.array(z.enum(ASYMMETRIC_ALGORITHMS)).min(1).default(['ES256', 'EdDSA', 'PS256', 'RS256']),
  // §4.3 check 11 and §11.1: how old a proof's iat may be; jti values are remembered this long.
  proofMaxAgeSeconds: z.number().int().min(5).max(300).default(60),
  clockSkewSeconds: z.number().int().min(0).max(60).default(5),
  // Remembered jti values per replica; when full of live ones, proofs are refused (503), never forgotten.
  replayCacheEntries: z.number().int().min(1_000).max(10_000_000).default(100_000),
  // §8: when set, every proof must carry a server nonce, rotated this often (current and previous accepted).
  nonce: z.strictObject({ rotationSeconds: z.number().int().min(10).max(3_600).default(300) }).optional(),
});

// RFC 8705 behind a mesh or proxy that terminates TLS: the client certificate's hash from one header,
// believed only on connections from the named hops (README "Certificate-bound tokens").
const mtls = z.strictObject({
  forwarded: z.strictObject({
    header: z.string().regex(/^[A-Za-z0-9-]{1,64}$/),
    // `xfcc`: Envoy's x-forwarded-client-cert, its Hash= (hex SHA-256 of the DER) of the element the
    // nearest hop added; `x5t#S256`: the RFC 8705 §3.1 thumbprint itself (base64url SHA-256 of the DER).
    format: z.enum(['xfcc', 'x5t#S256']),
    // Peer addresses or CIDRs (IPv4 or IPv6) of the hops allowed to set the header; nobody else is.
    trustedHops: z.array(z.string().min(1)).min(1),
  }).optional(),
});

// OpenTelemetry (README "Traces"): off unless `telemetry.traces` is set. The endpoint and headers may
// come from the standard OTEL_EXPORTER_OTLP_* variables instead; headers may carry a collector's key.
const telemetry = z.strictObject({
  traces: z.strictObject({
    otlpEndpoint: z.string().min(1).optional(),
    serviceName: z.string().regex(/^[\x21-\x7e]{1,128}$/).default('mcp-warden'),
    sampleRatio: z.number().min(0).max(1).default(1),
    headers: z.record(z.string().regex(/^[A-Za-z0-9-]{1,64}$/), z.string().regex(/^[\x20-\x7e]{0,4096}$/)).default({}),
    timeoutMs: z.number().int().min(100).max(60_000).default(10_000),
  }).optional(),
});

// Revocation (README "Revocation"): SSF receivers of CAEP/RISC events for the configured issuers.
const transmitter = z.strictObject({
  // A configured issuer (its name): the SETs carry its iss, are signed with its keys, and revoke its tokens.
  issuer: z.string().min(1),
  // RFC 8936 poll delivery: every replica pulls the stream itself (no inbound port, no shared store).
  poll: z.strictObject({
    url: z.string().min(1),
    intervalMs: z.number().int().min(100).max(600_000).default(1_000),
    timeoutMs: z.number().int().min(100).max(60_000).default(5_000),
    maxEvents: z.number().int().min(1).max(1_000).default(100),
    // A bearer token for the poll endpoint, read from this file (never inline in the config).
    authorizationFile: z.string().min(1).optional(),
  }).optional(),
  // RFC 8935 push delivery on the admin listener (POST /ssf/push/<issuer name>), bearer secret from a file.
  push: z.strictObject({ secretFile: z.string().min(1) }).optional(),
  // A poll stream not read successfully for this long is stale: /readyz and the metric say so.
  staleAfterSeconds: z.number().int().min(1).max(86_400).default(60),
  // While stale (and before the first successful poll), refuse this issuer's tokens (revocation_stale).
  failClosed: z.boolean().default(false),
});

const revocation = z.strictObject({
  // The aud every SET must carry (RFC 8417 §2.2): this gateway as a receiver; default publicUrl.
  audience: z.string().min(1).optional(),
  // Live revocation entries per replica; a revocation finding no room fails its issuer closed.
  maxEntries: z.number().int().min(100).max(10_000_000).default(100_000),
  // SET jti values remembered against replays (oldest forgotten first: re-applying one is idempotent).
  maxSeenSets: z.number().int().min(100).max(10_000_000).default(100_000),
  transmitters: z.array(transmitter).default([]),
});

export const configSchema = z.strictObject({
  listen: listener.extend({ tls: serverTls.optional() }).prefault({ port: 8080 }),
  admin: listener.prefault({ port: 9090 }),
  // Processes serving the traffic listener (issue 25): a number, or `auto` = os.availableParallelism().
  workers: z.union([z.number().int().min(1).max(256), z.literal('auto')]).default(1),
  publicUrl: z.string().min(1),
  issuers: z.array(issuer).min(1),
  upstreams: z.array(upstream).min(1),
  identity: identity,
  authorizationServer: authorizationServer.optional(),
  rateLimitStore: rateLimitStore.prefault({}),
  dpop: dpop.prefault({}),
  // README "Environment profiles": absent = no profile (the rules every config obeys, and a warning).
  environment: z.enum(ENVIRONMENTS).optional(),
  // The claim a token names its environment in; a token carrying it for another environment is refused.
  environmentClaim: z.string().regex(/^[A-Za-z0-9_:.-]{1,64}$/).default('env'),
  breakGlass: z.array(breakGlassGrant).default([]),
  mtls: mtls.prefault({}),
  // Tamper-evident audit (README "Audit trail"): a signed checkpoint every this many lines or seconds, and at shutdown.
  audit: z.strictObject({
    checkpointLines: z.number().int().min(1).max(1_000_000).default(1_000),
    checkpointSeconds: z.number().int().min(1).max(3_600).default(60),
  }).prefault({}),
  telemetry: telemetry.prefault({}),
  revocation: revocation.prefault({}),
  limits: z.strictObject({
    maxTokenBytes: z.number().int().min(1_024).max(16_384).default(8_192),
    maxBodyBytes: z.number().int().min(1_024).max(64 * 1024 * 1024).default(1024 * 1024),
    maxBatchLength: z.number().int().min(1).max(1_000).default(100),
    maxListingBytes: z.number().int().min(64 * 1024).max(64 * 1024 * 1024).default(8 * 1024 * 1024),
    headersTimeoutMs: z.number().int().min(1_000).max(120_000).default(10_000),
    requestTimeoutMs: z.number().int().min(1_000).max(600_000).default(60_000),
    tokenCacheEntries: z.number().int().min(0).max(1_000_000).default(10_000),
    // Open SSE streams (GET) one identity (issuer + subject + client) may hold at once; more get 429.
    maxStreamsPerIdentity: z.number().int().min(1).max(100_000).default(32),
    // Open SSE streams in all (every upstream, every identity); a GET past it gets 503 streams_exhausted.
    maxStreams: z.number().int().min(1).max(1_000_000).default(10_000),
    // Memory budget (MiB) outside a cgroup: V8's heap and young generation are sized from it (issue 17 §9).
    memoryMiB: z.number().int().min(64).max(1_048_576).optional(),
    // Client connections the traffic listener holds at once (server.maxConnections); more are dropped.
    maxConnections: z.number().int().min(16).max(1_000_000).default(20_000),
    // SIGTERM: /readyz 503 and Connection: close at once; the listener stays open this long (load
    // balancers take the pod out), then closes.
    drainDelayMs: z.number().int().min(0).max(120_000).default(0),
    // After the listener closed: let requests finish, end SSE streams with a final event, exit by then.
    shutdownGraceMs: z.number().int().min(0).max(300_000).default(10_000),
    // expiresAt − activatedAt of a break-glass grant: at most this, never above 72 h.
    breakGlassMaxWindowSeconds: z.number().int().min(60).max(BREAK_GLASS_MAX_WINDOW_CEILING).default(BREAK_GLASS_MAX_WINDOW_CEILING),
    // The production profile's cap on every issuer's maxTokenLifetimeSeconds; it can only be lowered.
    productionMaxTokenLifetimeSeconds: z.number().int().min(60).max(PRODUCTION_MAX_TOKEN_LIFETIME).default(PRODUCTION_MAX_TOKEN_LIFETIME),
  }).prefault({}),
});

export type RawConfig = z.infer<typeof configSchema>;
export type RawIssuer = z.infer<typeof issuer>;
export type RawUpstream = z.infer<typeof upstream>;
export type RawBreakGlassGrant = z.infer<typeof breakGlassGrant>;

export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: 'input' });
}
