import type { Era } from './policy/era.ts';

// One vocabulary for every refusal: the reason code drives the HTTP status, the RFC 6750 challenge,
// the audit log field and the metric label (STYLE rule 4).

export type Reason =
  | 'token_missing'
  | 'token_duplicate'
  | 'token_too_large'
  | 'token_malformed'
  | 'credentials_conflict'
  | 'alg_not_allowed'
  | 'iss_unknown'
  | 'key_unknown'
  | 'signature_invalid'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'token_too_old'
  | 'token_lifetime_exceeded'
  | 'typ_invalid'
  | 'aud_mismatch'
  | 'claims_invalid'
  | 'token_inactive'
  | 'environment_mismatch'
  | 'break_glass_inactive'
  | 'break_glass_expired'
  | 'break_glass_not_allowed'
  | 'break_glass_lifetime_exceeded'
  | 'break_glass_claims_missing'
  | 'token_revoked'
  | 'revocation_stale'
  | 'dpop_required'
  | 'dpop_invalid'
  | 'dpop_replayed'
  | 'dpop_nonce_required'
  | 'dpop_unavailable'
  | 'token_binding_mismatch'
  | 'token_binding_unsupported'
  | 'mtls_required'
  | 'certificate_missing'
  | 'certificate_mismatch'
  | 'jwks_unavailable'
  | 'introspection_unavailable'
  | 'insufficient_scope'
  | 'client_not_allowed'
  | 'policy_denied'
  | 'condition_error'
  | 'tool_pin_mismatch'
  | 'tool_unlisted'
  | 'body_too_large'
  | 'body_invalid'
  | 'rpc_invalid'
  | 'batch_not_allowed'
  | 'protocol_version_unsupported'
  | 'header_mismatch'
  | 'media_type_unsupported'
  | 'content_encoding_unsupported'
  | 'body_encoding_invalid'
  | 'json_duplicate_key'
  | 'json_proto_key'
  | 'method_invalid'
  | 'method_not_found'
  | 'name_invalid'
  | 'too_many_streams'
  | 'rate_limited'
  | 'upstream_busy'
  | 'upstream_ejected'
  | 'streams_exhausted'
  | 'session_invalid'
  | 'session_unknown'
  | 'event_id_unknown'
  | 'tasks_unsupported'
  | 'origin_forbidden'
  | 'host_invalid'
  | 'http_version_unsupported'
  | 'header_duplicate'
  | 'transfer_coding_unsupported'
  | 'body_not_allowed'
  | 'path_invalid'
  | 'route_unknown'
  | 'method_not_allowed'
  | 'upstream_unavailable'
  | 'upstream_timeout'
  | 'client_closed'
  | 'internal_error';

// RFC 6750 §3.1 and RFC 9449 §7.1 / §9 (the DPoP challenge's own codes).
type OAuthError = 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof' | 'use_dpop_nonce';

/**
 * The challenge's scheme: `resource` = the one the upstream accepts (Bearer, or DPoP where it requires
 * sender-constrained tokens); `DPoP` = always DPoP with `algs` (RFC 9449 §7.1), for the proof refusals.
 */
type ChallengeScheme = 'resource' | 'DPoP';

/**
 * Everything a denial does, in one row: nothing outside this table decides a status, a challenge, a
 * JSON-RPC code, an audit outcome or an extra header for a reason.
 */
export interface ReasonInfo {
  readonly status: number;
  /** RFC 6750 §3.1 error code for the Bearer challenge; undefined = no error attribute (or no challenge). */
  readonly oauthError: OAuthError | undefined;
  /** Whether a challenge is sent at all (every 401 and 403-scope must carry one). */
  readonly challenge: boolean;
  readonly scheme: ChallengeScheme;
  /** Generic text: never derived from the token, never from internals (SC-179). */
  readonly description: string;
  /** The `error` member of a plain JSON answer: the OAuth code, else a name for the status. */
  readonly error: string;
  /** JSON-RPC 2.0 §5.1 code when the answer is a JSON-RPC error (the body was read), before 2026-07-28. */
  readonly rpcCode: number;
  /** The code by the request's protocol era: 2026-07-28 allocated its own (schema "MCP error codes"). */
  readonly rpcCodes: Readonly<Record<Era, number>>;
  /** Audit outcome: a refusal of the caller, or the gateway/upstream failing. */
  readonly outcome: 'deny' | 'error';
  /** Extra response headers this reason always carries (Retry-After, Allow). */
  readonly headers: Readonly<Record<string, string>>;
}

interface Extra {
  readonly rpcCode?: number;
  /** From 2026-07-28 on, when that revision numbers this error differently. */
  readonly statelessRpcCode?: number;
  readonly outcome?: 'deny' | 'error';
  readonly headers?: Readonly<Record<string, string>>;
  readonly scheme?: ChallengeScheme;
}

// JSON-RPC 2.0 §5.1: -32600 Invalid Request unless the row says otherwise.
const INVALID_REQUEST = -32600;
// -32003 is the MCP ecosystem's "forbidden" for calls the policy refuses.
const FORBIDDEN = -32003;
// JSON-RPC 2.0 §5.1 leaves -32000..-32099 to the implementation: -32029 reads as HTTP 429.
const RATE_LIMITED = -32029;
// MCP 2026-07-28 schema "MCP error codes": HeaderMismatch and UnsupportedProtocolVersion.
const HEADER_MISMATCH = -32020;
const UNSUPPORTED_PROTOCOL_VERSION = -32022;

const r = (status: number, oauthError: OAuthError | undefined, challenge: boolean, description: string, extra: Extra = {}): ReasonInfo =>
  Object.freeze({
    status, oauthError, challenge, description,
    scheme: extra.scheme ?? 'resource',
    error: oauthError ?? errorName(status),
    rpcCode: extra.rpcCode ?? INVALID_REQUEST,
    rpcCodes: Object.freeze({ sessions: extra.rpcCode ?? INVALID_REQUEST, stateless: extra.statelessRpcCode ?? extra.rpcCode ?? INVALID_REQUEST }),
    outcome: extra.outcome ?? 'deny',
    headers: Object.freeze({ ...extra.headers }),
  });

const RETRY_SOON = { 'retry-after': '5' };
const CLOSE = { connection: 'close' };

export const reasons: Readonly<Record<Reason, ReasonInfo>> = Object.freeze({
  token_missing: r(401, undefined, true, 'a bearer token is required'),
  token_duplicate: r(400, 'invalid_request', true, 'more than one credential was sent'),
  token_too_large: r(400, 'invalid_request', true, 'the bearer token is too large'),
  token_malformed: r(401, 'invalid_token', true, 'the bearer token is malformed'),
  credentials_conflict: r(400, 'invalid_request', true, 'the token was sent by more than one method'),
  alg_not_allowed: r(401, 'invalid_token', true, 'the token algorithm is not accepted'),
  iss_unknown: r(401, 'invalid_token', true, 'the token issuer is not accepted for this resource'),
  key_unknown: r(401, 'invalid_token', true, 'the token signing key is not known'),
  signature_invalid: r(401, 'invalid_token', true, 'the token signature is invalid'),
  token_expired: r(401, 'invalid_token', true, 'the token has expired'),
  token_not_yet_valid: r(401, 'invalid_token', true, 'the token is not yet valid'),
  token_too_old: r(401, 'invalid_token', true, 'the token was issued too long ago'),
  token_lifetime_exceeded: r(401, 'invalid_token', true, 'the token lifetime exceeds the accepted maximum'),
  typ_invalid: r(401, 'invalid_token', true, 'the token is not an access token'),
  aud_mismatch: r(401, 'invalid_token', true, 'the token audience is not this resource'),
  claims_invalid: r(401, 'invalid_token', true, 'the token claims are invalid'),
  token_inactive: r(401, 'invalid_token', true, 'the token is not active'),
  // README "Environment profiles": the token's environment claim names another environment.
  environment_mismatch: r(401, 'invalid_token', true, 'the token was issued for another environment'),
  // README "Break-glass access": a token of a break-glass grant outside its window, or beyond its limits.
  break_glass_inactive: r(401, 'invalid_token', true, 'the break-glass access this token belongs to is not active yet'),
  break_glass_expired: r(401, 'invalid_token', true, 'the break-glass access this token belongs to has expired'),
  break_glass_not_allowed: r(403, undefined, false, 'break-glass access does not cover this resource or these scopes', { rpcCode: FORBIDDEN }),
  break_glass_lifetime_exceeded: r(401, 'invalid_token', true, 'the token lives longer than break-glass access accepts'),
  break_glass_claims_missing: r(401, 'invalid_token', true, 'the token lacks the authentication break-glass access requires'),
  // A revocation (SSF/CAEP event, RFC 7009 at the embedded issuer) covers this token, cached or not.
  token_revoked: r(401, 'invalid_token', true, 'the token has been revoked'),
  // The issuer's revocation stream is unreadable past its bound (failClosed), or its store overflowed.
  revocation_stale: r(503, undefined, false, 'revocation state for this issuer is unavailable; try again later', { headers: RETRY_SOON }),
  // RFC 9449 §7.2: a DPoP-bound token sent as Bearer (a downgrade), or Bearer where the upstream requires DPoP.
  dpop_required: r(401, 'invalid_token', true, 'this token must be presented with the DPoP scheme and a DPoP proof', { scheme: 'DPoP' }),
  // RFC 9449 §4.3: a missing, repeated or malformed proof, or one failing any check.
  dpop_invalid: r(401, 'invalid_dpop_proof', true, 'the DPoP proof is missing or invalid', { scheme: 'DPoP' }),
  dpop_replayed: r(401, 'invalid_dpop_proof', true, 'the DPoP proof was already used', { scheme: 'DPoP' }),
  // RFC 9449 §8 / §9: the answer carries a fresh DPoP-Nonce (the denial's dpopNonce).
  dpop_nonce_required: r(401, 'use_dpop_nonce', true, 'a fresh DPoP nonce from this server is required', { scheme: 'DPoP' }),
  // The jti replay cache is full of live entries: refusing is the only answer that cannot admit a replay.
  dpop_unavailable: r(503, undefined, false, 'DPoP proofs cannot be checked right now; try again later', { headers: RETRY_SOON, outcome: 'error' }),
  // RFC 9449 §7.1 / §6.1: the proof's key is not the token's cnf.jkt, or the token's binding is absent or not checkable.
  token_binding_mismatch: r(401, 'invalid_token', true, 'the proof key is not the key this token is bound to', { scheme: 'DPoP' }),
  // RFC 7800 cnf with a member other than jkt / x5t#S256, or a malformed one: refused, never ignored.
  token_binding_unsupported: r(401, 'invalid_token', true, 'the token is bound by a confirmation method this resource cannot check'),
  // RFC 8705 §3: a token that is not certificate-bound where mtls is required (by the upstream or the issuer).
  mtls_required: r(401, 'invalid_token', true, 'this resource requires a token bound to the client certificate (RFC 8705)'),
  // RFC 8705 §3: a certificate-bound token on a connection without a verified client certificate.
  certificate_missing: r(401, 'invalid_token', true, 'this token is bound to a client certificate and none was presented'),
  // RFC 8705 §3.1: the presented certificate's SHA-256 thumbprint is not the token's cnf x5t#S256.
  certificate_mismatch: r(401, 'invalid_token', true, 'the client certificate is not the one this token is bound to'),
  jwks_unavailable: r(503, undefined, false, 'signing keys are unavailable; try again later', { headers: RETRY_SOON }),
  introspection_unavailable: r(503, undefined, false, 'token introspection is unavailable; try again later', { headers: RETRY_SOON }),
  insufficient_scope: r(403, 'insufficient_scope', true, 'the token lacks a required scope', { rpcCode: FORBIDDEN }),
  client_not_allowed: r(403, undefined, false, 'this client is not allowed for this resource'),
  too_many_streams: r(429, undefined, false, 'too many open streams for this identity', { headers: { 'retry-after': '10' } }),
  // Retry-After varies per refusal (the limit's wait): the denial carries it (retryAfterSeconds).
  rate_limited: r(429, undefined, false, 'rate limit or quota exceeded; retry after the time given', { rpcCode: RATE_LIMITED }),
  // Overload (issue 17 §8): the gateway sheds at its bounds instead of queueing without end.
  upstream_busy: r(503, undefined, false, 'the upstream server is at its request limit; try again shortly', { outcome: 'error', headers: { 'retry-after': '1' } }),
  upstream_ejected: r(503, undefined, false, 'the upstream server is failing and taken out for a while; try again later', { outcome: 'error', headers: { 'retry-after': '10' } }),
  streams_exhausted: r(503, undefined, false, 'the gateway is at its open stream limit; try again later', { outcome: 'error', headers: { 'retry-after': '10' } }),
  session_invalid: r(400, undefined, false, 'invalid session id'),
  // For another identity's session, the same answer as for an unknown one (MCP: 404 → re-initialize).
  session_unknown: r(404, undefined, false, 'session not found'),
  // Another identity's Last-Event-ID: answered like an unknown one, so its existence does not leak.
  event_id_unknown: r(404, undefined, false, 'event not found'),
  // MCP tasks: task ids are not yet bound to the caller the way session and event ids are.
  tasks_unsupported: r(403, undefined, false, 'MCP tasks are not accepted through this gateway', { rpcCode: FORBIDDEN }),
  policy_denied: r(403, undefined, false, 'the policy does not allow this call', { rpcCode: FORBIDDEN }),
  // A rule's CEL condition could not be decided for this call (missing field, wrong type, cost limit): fail closed.
  condition_error: r(403, undefined, false, 'the policy could not evaluate a condition for this call', { rpcCode: FORBIDDEN }),
  // Pinned tool catalogues: a tool whose definition changed is held back until re-pinned; one never listed may be refused.
  tool_pin_mismatch: r(403, undefined, false, 'the tool\'s definition differs from its pinned definition', { rpcCode: FORBIDDEN }),
  tool_unlisted: r(403, undefined, false, 'the tool has not been listed by this server; list the tools first', { rpcCode: FORBIDDEN }),
  body_too_large: r(413, undefined, false, 'the request body is too large'),
  body_invalid: r(400, undefined, false, 'the request body is not valid JSON', { rpcCode: -32700 }),
  rpc_invalid: r(400, undefined, false, 'the request body is not a valid JSON-RPC message'),
  batch_not_allowed: r(400, undefined, false, 'JSON-RPC batches are not part of this protocol version'),
  // The only code any revision defines for it; its data says which versions to retry with.
  protocol_version_unsupported: r(400, undefined, false, 'unsupported MCP-Protocol-Version', { rpcCode: UNSUPPORTED_PROTOCOL_VERSION }),
  // 2026-07-28 transports "Server Validation": 400 and HeaderMismatch, so a client refetches tools/list and retries.
  header_mismatch: r(400, undefined, false, 'an Mcp-* request header is missing, malformed or does not match the request body', { statelessRpcCode: HEADER_MISMATCH }),
  media_type_unsupported: r(415, undefined, false, 'the request body must be application/json'),
  content_encoding_unsupported: r(415, undefined, false, 'the request body must not carry a content coding'),
  body_encoding_invalid: r(400, undefined, false, 'the request body must be UTF-8 without a byte order mark, lone surrogates or NUL characters'),
  json_duplicate_key: r(400, undefined, false, 'the request body repeats a key within an object'),
  json_proto_key: r(400, undefined, false, 'the request body has a "__proto__" key, which JavaScript copies of it read as the object prototype'),
  method_invalid: r(400, undefined, false, 'the JSON-RPC method is not a valid MCP method name'),
  // 2026-07-28 transports "Protocol Version Header": a method the request's revision does not define is 404 with -32601.
  method_not_found: r(404, undefined, false, 'the method is not part of the requested protocol revision', { rpcCode: -32601 }),
  name_invalid: r(400, undefined, false, 'a tool, prompt or resource name contains characters that are not allowed'),
  origin_forbidden: r(403, undefined, false, 'origin not allowed'),
  host_invalid: r(400, undefined, false, 'invalid host header'),
  // Framing refusals end the connection: where the next request starts is no longer certain.
  http_version_unsupported: r(400, undefined, false, 'the request line must name HTTP/1.0 or HTTP/1.1', { headers: CLOSE }),
  header_duplicate: r(400, undefined, false, 'a header that must appear once was repeated', { headers: CLOSE }),
  // RFC 9112 §6.1 allows 501 for an unknown coding; 400 keeps one answer whether Node's parser or this
  // check sees the framing first.
  transfer_coding_unsupported: r(400, undefined, false, 'only the chunked transfer coding is accepted', { headers: CLOSE }),
  body_not_allowed: r(400, undefined, false, 'GET and DELETE requests carry no body', { headers: CLOSE }),
  path_invalid: r(400, undefined, false, 'invalid request path'),
  route_unknown: r(404, undefined, false, 'not found'),
  method_not_allowed: r(405, undefined, false, 'method not allowed', { headers: { allow: 'GET, POST, DELETE, OPTIONS' } }),
  upstream_unavailable: r(502, undefined, false, 'the upstream server is unavailable', { outcome: 'error' }),
  upstream_timeout: r(504, undefined, false, 'the upstream server did not answer in time', { outcome: 'error' }),
  // nginx's 499: the connection was gone before the judged request could leave; nothing is sent.
  client_closed: r(499, undefined, false, 'the client closed the connection', { outcome: 'error' }),
  internal_error: r(500, undefined, false, 'internal error', { outcome: 'error' }),
});

function errorName(status: number): string {
  switch (status) {
    case 400:
      return 'invalid_request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 405:
      return 'method_not_allowed';
    case 413:
      return 'payload_too_large';
    case 415:
      return 'unsupported_media_type';
    case 429:
      return 'too_many_requests';
    case 502:
      return 'bad_gateway';
    case 503:
      return 'temporarily_unavailable';
    case 504:
      return 'gateway_timeout';
    default:
      return 'server_error';
  }
}

/** A typed refusal produced by any stage; one place (respond.ts) turns it into an HTTP response. */
export interface Denial {
  readonly kind: 'deny';
  readonly reason: Reason;
  /** Scopes for the challenge's scope attribute (RFC 6750 §3, MCP step-up). */
  readonly scopes?: readonly string[];
  /** Set once the JSON-RPC body was read: the answer is a JSON-RPC error for this id. */
  readonly rpcId?: string | number | null;
  /** RFC 9110 §10.2.3 Retry-After in seconds, for reasons whose wait varies (rate_limited). */
  readonly retryAfterSeconds?: number;
  /** The request's protocol era, which picks the JSON-RPC code (ReasonInfo.rpcCodes); absent = sessions. */
  readonly era?: Era;
  /** RFC 9449 §8: the nonce a use_dpop_nonce refusal hands out in DPoP-Nonce. */
  readonly dpopNonce?: string;
  /** Members of the JSON-RPC error's data beside `reason` (e.g. -32022's supported and requested). */
  readonly data?: Readonly<Record<string, unknown>>;
}

export function deny(reason: Reason, scopes?: readonly string[]): Denial {
  return scopes === undefined ? { kind: 'deny', reason } : { kind: 'deny', reason, scopes };
}

export function isDenial(value: unknown): value is Denial {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'deny';
}
