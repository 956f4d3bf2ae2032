import type { IncomingMessage } from 'node:http';
import { FORWARDED_CONTENT_TYPE } from '../policy/body.ts';
import { keepValidTraceContext } from '../observe/traceparent.ts';
import { boundedMemo } from '../lib/bounded-memo.ts';

// What the upstream receives from the client's headers is an allow-list (#15 point 6): a deny-list
// let through every impersonation header nobody had thought of (Impersonate-User, X-Amzn-Oidc-*,
// X-Goog-Authenticated-User-*, Cf-Access-*, X-Pomerium-Jwt-Assertion, True-Client-IP, X-Host,
// X-Envoy-Original-Path...). Content negotiation, the MCP headers the gateway checks, trace context
// and the user agent pass; the gateway then adds its own (assertion, session and event ids it has
// checked, X-Forwarded-*).
const FORWARDED = [
  'accept', 'accept-encoding', 'accept-language', 'content-type', 'user-agent', 'origin',
  // W3C Trace Context, passed only when it parses (below). Not W3C Baggage: its members are
  // application facts (user, tenant) a client can set to anything; an upstream that wants them lists
  // `baggage` in forwardHeaders.
  'traceparent', 'tracestate',
  // MCP transports: the gateway reads or checks these before forwarding.
  'mcp-protocol-version', 'mcp-method', 'mcp-name',
];
// Headers whose value the gateway judged: never removed by the client's Connection list.
const JUDGED = new Set(['content-type', 'mcp-protocol-version', 'mcp-method', 'mcp-name']);
// MCP 2026-07-28 mirrors tool parameters into Mcp-Param-{Name}; servers must check them against the body.
const FORWARDED_PREFIXES = ['mcp-param-'];

// Never forwarded, whatever a config says (forwardHeaders extras are checked against this at start):
// RFC 9110 §7.6.1 hop-by-hop fields, credentials (MCP "Token Passthrough", SC-099, SC-104), framing
// and routing the gateway owns, overrides some frameworks honour over the request line (SC-117,
// SC-127), and identity-looking names a client could forge (SC-100).
const NEVER = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect', 'host',
  'content-length', 'proxy-authorization', 'proxy-authenticate', 'authorization', 'cookie', 'dpop', 'forwarded',
  'x-real-ip', 'true-client-ip', 'x-host', 'mcp-session-id', 'last-event-id', 'x-request-id',
  'x-original-url', 'x-rewrite-url', 'x-override-url', 'x-original-uri', 'x-http-method-override', 'x-http-method', 'x-method-override',
]);
const NEVER_PREFIXES = [
  'x-mcp-', 'x-identity', 'x-forwarded-', 'x-user', 'x-auth', 'x-remote-', 'remote-user', 'x-client-', 'x-jwt', 'x-id-token',
  'x-access-token', 'x-email', 'x-groups', 'impersonate-', 'x-amzn-oidc-', 'x-goog-', 'cf-access-', 'x-pomerium-', 'x-envoy-',
];

/** Why a configured extra header may not be forwarded; undefined when it may. */
export function extraHeaderProblem(name: string, assertionHeader: string): string | undefined {
  const lower = name.toLowerCase();
  // CGI, WSGI and Rack upstreams read `_` and `-` alike: X_MCP_Identity would arrive as X-MCP-Identity.
  if (!/^[a-z0-9-]{1,64}$/.test(lower)) return 'must be a header name of letters, digits and - (no _)';
  if (lower === assertionHeader.toLowerCase() || NEVER.has(lower) || NEVER_PREFIXES.some((p) => lower.startsWith(p))) {
    return 'is a credential, identity, framing or routing header the gateway never forwards';
  }
  return undefined;
}

/** The names one upstream receives from clients: the base allow-list plus its configured extras. */
export function forwardedNames(extras: readonly string[]): ReadonlySet<string> {
  return new Set([...FORWARDED, ...extras.map((e) => e.toLowerCase())]);
}

// Clients send the same few header names on every request, often capitalised ("Content-Type"): their
// lower-case form is kept (512 names of at most 64 characters, whoever sends them) instead of made
// anew per header per request.
const lowerName = boundedMemo(512, 64, (name) => name.toLowerCase());

function forwardedByPrefix(name: string): boolean {
  for (const prefix of FORWARDED_PREFIXES) if (name.startsWith(prefix)) return true;
  return false;
}

/**
 * Client request headers → upstream request headers, by allow-list. Names listed in Connection are
 * removed first (RFC 9110 §7.6.1); the gateway's own headers are added afterwards by the caller, so a
 * client can never set or strip them (SC-102, CVE-2024-45410).
 */
export function upstreamRequestHeaders(req: IncomingMessage, allowed: ReadonlySet<string>): Record<string, string | string[]> {
  const conn = req.headers.connection;
  const connectionListed = conn === undefined ? undefined : new Set(conn.split(',').map((n) => n.trim().toLowerCase()));
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = lowerName(raw[i] as string);
    if (!allowed.has(name) && !forwardedByPrefix(name)) continue;
    // A client listing a header the gateway judged (its type, the protocol version, the MCP mirrors) in
    // Connection cannot take it away from the upstream: it would read another version or type.
    if (connectionListed?.has(name) === true && !JUDGED.has(name) && !name.startsWith('mcp-param-')) continue;
    // The only body the gateway forwards is one it admitted and read as UTF-8 JSON (policy/body.ts): the
    // upstream is told exactly that, once, with no charset or parameter to read it otherwise (SC-185).
    if (name === 'content-type') {
      out[name] = FORWARDED_CONTENT_TYPE;
      continue;
    }
    const value = raw[i + 1] as string;
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev, value];
  }
  // Trace context passes only when it parses (W3C Trace Context); with tracing on, the proxy stage
  // replaces it with the gateway's own span (observe/trace.ts).
  keepValidTraceContext(out);
  return out;
}
