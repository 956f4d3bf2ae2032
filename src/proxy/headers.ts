import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { FORWARDED_CONTENT_TYPE } from '../policy/body.ts';

// RFC 9110 §7.6.1 hop-by-hop fields, plus credentials that must never cross the gateway (MCP "Token
// Passthrough", SC-099, SC-104) and Expect (the gateway answers 100-continue itself, after auth).
const ALWAYS_DROP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'authorization', 'cookie', 'expect', 'host',
  'forwarded', 'x-real-ip', 'dpop',
  // Path and method overrides some upstream frameworks honour over the request line: the upstream must act
  // on the path and method the gateway routed and authorized (SC-117, SC-127).
  'x-original-url', 'x-rewrite-url', 'x-override-url', 'x-original-uri', 'x-http-method-override', 'x-http-method', 'x-method-override',
]);

// Identity-looking headers a client could forge to impersonate someone upstream (SC-100, Pomerium's
// "strip x-pomerium-*"): the gateway is the only one that sets identity, so every such name is dropped.
const IDENTITY_PREFIXES = ['x-mcp-', 'x-identity', 'x-forwarded-', 'x-user', 'x-auth', 'x-remote-', 'remote-user', 'x-client-', 'x-jwt', 'x-id-token', 'x-access-token', 'x-email', 'x-groups'];

function isIdentityHeader(name: string): boolean {
  for (const prefix of IDENTITY_PREFIXES) if (name.startsWith(prefix)) return true;
  return false;
}

/**
 * Client request headers → upstream request headers. Names listed in Connection are removed from the
 * client's request first; the gateway's own headers are added afterwards by the caller, so a client
 * can never strip them (SC-102, CVE-2024-45410).
 */
export function upstreamRequestHeaders(req: IncomingMessage, identityHeader: string): Record<string, string | string[]> {
  const connectionListed = new Set<string>();
  const conn = req.headers.connection;
  if (conn !== undefined) for (const name of conn.split(',')) connectionListed.add(name.trim().toLowerCase());
  const own = identityHeader.toLowerCase();
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    // CGI, WSGI and Rack upstreams read `_` and `-` in a name alike: X_MCP_Identity would arrive as a second
    // X-MCP-Identity (or Mcp_Session_Id as a session id), so no name with `_` is forwarded, as nginx does
    // by default (SC-100).
    if (name.includes('_') || ALWAYS_DROP.has(name) || connectionListed.has(name) || name === own || isIdentityHeader(name)) continue;
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
  return out;
}

const RESPONSE_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate']);

/** Upstream response headers → client, without hop-by-hop fields (and those the upstream's Connection names). */
export function clientResponseHeaders(headers: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const listed = new Set<string>();
  const conn = headers['connection'];
  if (conn !== undefined) for (const name of String(conn).split(',')) listed.add(name.trim().toLowerCase());
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || RESPONSE_DROP.has(name) || listed.has(name)) continue;
    out[name] = value;
  }
  return out;
}
