import type { IncomingMessage, ServerResponse } from 'node:http';
import { reasons, type Denial } from './reasons.ts';

export interface ChallengeContext {
  /** RFC 9728 §5.1 resource_metadata URL; absent when no upstream was identified. */
  readonly resourceMetadataUrl: string | undefined;
  /** Whether the request presented a bearer token (RFC 6750 §3: no error attributes otherwise). */
  readonly tokenPresented: boolean;
  /** Scopes for the challenge when the denial does not carry its own. */
  readonly defaultScopes: readonly string[];
  readonly extraHeaders?: Record<string, string>;
}

/** The one place a denial becomes an HTTP response: status, RFC 6750 challenge, JSON body with the reason. */
export function sendDenial(req: IncomingMessage, res: ServerResponse, denial: Denial, ctx: ChallengeContext): void {
  const info = reasons[denial.reason];
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    ...ctx.extraHeaders,
  };
  if (info.challenge && ctx.resourceMetadataUrl !== undefined) {
    const params: string[] = [`resource_metadata="${ctx.resourceMetadataUrl}"`];
    // RFC 6750 §3: a request without credentials gets no error code.
    const withError = info.oauthError !== undefined && (ctx.tokenPresented || info.oauthError !== 'invalid_token');
    if (withError) {
      params.push(`error="${info.oauthError}"`, `error_description="${info.description}"`);
    }
    const scopes = denial.scopes ?? ctx.defaultScopes;
    if (scopes.length > 0) params.push(`scope="${scopes.join(' ')}"`);
    headers['www-authenticate'] = `Bearer ${params.join(', ')}`;
  }
  if (denial.reason === 'jwks_unavailable' || denial.reason === 'introspection_unavailable') headers['retry-after'] = '5';
  if (denial.reason === 'method_not_allowed') headers['allow'] = 'GET, POST, DELETE, OPTIONS';
  if (denial.reason === 'too_many_streams') headers['retry-after'] = '10';
  // A request body we refused without reading must not be parsed as the next request on this connection.
  if (!req.complete) headers['connection'] = 'close';
  const body = JSON.stringify(denial.rpcId !== undefined ? rpcError(denial, denial.rpcId, info.description) : {
    error: info.oauthError ?? errorName(info.status),
    error_description: info.description,
    reason: denial.reason,
  });
  headers['content-length'] = String(Buffer.byteLength(body));
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(info.status, headers);
  res.end(body);
}

// JSON-RPC 2.0 §5.1 codes; -32003 is the MCP ecosystem's "forbidden" for calls the policy refuses.
function rpcError(denial: Denial, id: string | number | null, message: string): unknown {
  const code = denial.reason === 'body_invalid' ? -32700 : denial.reason === 'policy_denied' || denial.reason === 'insufficient_scope' ? -32003 : -32600;
  const data: Record<string, unknown> = { reason: denial.reason };
  if (denial.scopes !== undefined) data['scope'] = denial.scopes.join(' ');
  return { jsonrpc: '2.0', id, error: { code, message, data } };
}

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
