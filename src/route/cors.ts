import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';

// CORS for browser MCP clients (Fetch standard §3.2 "CORS protocol"). Only ever the caller's own,
// allowed origin, never "*" (SC-128): a wildcard would not cover Authorization anyway, and the
// gateway answers for credentials.

// Request headers a browser client may send: credentials (RFC 6750, RFC 9449 §7.1 DPoP), content
// negotiation, the MCP transport headers of both eras (2025: session and Last-Event-ID; 2026-07-28:
// Mcp-Method, Mcp-Name) and W3C Trace Context, which the gateway forwards.
const ALLOWED_REQUEST_HEADERS = [
  'authorization', 'dpop', 'content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id',
  'mcp-method', 'mcp-name', 'traceparent', 'tracestate', 'baggage',
] as const;

// Response headers outside the CORS-safelisted set a browser client must read: the 2025 session id,
// the 401/403 challenge (RFC 6750 §3, step-up), DPoP-Nonce (RFC 9449 §8), Retry-After on 429/503,
// and the request id an operator asks for.
const EXPOSED_RESPONSE_HEADERS = 'mcp-session-id, www-authenticate, dpop-nonce, retry-after, x-request-id';

// MCP 2026-07-28 "Custom Headers from Tool Parameters": Mcp-Param-{Name}, Name an RFC 9110 §5.1 token.
// The names are per tool, so they cannot be listed up front; the preflight echoes the requested ones.
const PARAM_HEADER = /^mcp-param-[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const MAX_PARAM_HEADERS = 64;
const MAX_HEADER_NAME = 128;

export interface Cors {
  /** Added to every answer for this origin, refusals included. */
  readonly headers: Readonly<Record<string, string>>;
  /** The full preflight answer for the Access-Control-Request-Headers of `req`. */
  preflight(req: IncomingMessage): Record<string, string>;
}

/** The CORS answers for one allowed origin, built once per config. */
export function createCors(origin: string): Cors {
  const headers = Object.freeze({
    'access-control-allow-origin': origin,
    'access-control-expose-headers': EXPOSED_RESPONSE_HEADERS,
    vary: 'Origin',
  });
  const fixed = ALLOWED_REQUEST_HEADERS.join(', ');
  return {
    headers,
    preflight(req) {
      const params = requestedParamHeaders(req.headers['access-control-request-headers']);
      return {
        ...headers,
        'access-control-allow-methods': 'GET, POST, DELETE',
        'access-control-allow-headers': params.length === 0 ? fixed : `${fixed}, ${params.join(', ')}`,
        'access-control-max-age': '600',
        // The allowed headers depend on what was asked: a cache must not answer another preflight with it.
        vary: 'Origin, Access-Control-Request-Headers',
        'content-length': '0',
      };
    },
  };
}

/**
 * The syntactically valid Mcp-Param-* names among the requested ones (a browser sends them lower-case,
 * comma-separated); anything else is left out, so the browser refuses to send it. Bounded in count
 * and length: the answer never grows with what a caller asks beyond what one tool can declare.
 */
function requestedParamHeaders(requested: string | undefined): string[] {
  if (requested === undefined) return [];
  const out = new Set<string>();
  for (const item of requested.split(',')) {
    const name = item.trim().toLowerCase();
    if (name.length > MAX_HEADER_NAME || !PARAM_HEADER.test(name)) continue;
    out.add(name);
    if (out.size === MAX_PARAM_HEADERS) break;
  }
  return [...out];
}

/**
 * The gateway's CORS headers on an upstream's answer (the upstream's own access-control-* never pass,
 * proxy/headers.ts). Vary is merged, not replaced: the upstream's Vary (Accept, Accept-Encoding,
 * Authorization) still keys a cache on what the answer depends on, beside the Origin ours adds.
 */
export function withCors(headers: OutgoingHttpHeaders, cors: Readonly<Record<string, string>>): void {
  const upstreamVary = headers['vary'];
  Object.assign(headers, cors);
  if (upstreamVary === undefined || cors['vary'] === undefined) return;
  const names = new Map<string, string>();
  for (const name of [...String(upstreamVary).split(','), ...cors['vary'].split(',')]) {
    const trimmed = name.trim();
    if (trimmed !== '' && !names.has(trimmed.toLowerCase())) names.set(trimmed.toLowerCase(), trimmed);
  }
  headers['vary'] = names.has('*') ? '*' : [...names.values()].join(', ');
}
