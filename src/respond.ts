import type { RequestContext } from './observe/context.ts';
import { reasons, type Denial } from './reasons.ts';
import type { Step } from './stage.ts';

/** The end of the pipeline: a refusal becomes its answer; anything else was answered by its stage. */
export function settle(ctx: RequestContext, step: Step<unknown>): void {
  if ((step as { readonly kind?: unknown }).kind === 'deny') refuse(ctx, step as Denial);
}

/**
 * The one place a denial becomes an HTTP response. Every behaviour comes from the reason's row in the
 * table: status, RFC 6750 challenge, JSON or JSON-RPC body, audit outcome, extra headers.
 */
export function refuse(ctx: RequestContext, denial: Denial): void {
  const info = reasons[denial.reason];
  ctx.record.outcome = info.outcome;
  ctx.record.reason = denial.reason;
  const { req, res } = ctx;
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store', ...ctx.cors, ...info.headers };
  if (denial.retryAfterSeconds !== undefined) headers['retry-after'] = String(denial.retryAfterSeconds);
  const resourceMetadataUrl = ctx.upstream?.resourceMetadataUrl;
  if (info.challenge && resourceMetadataUrl !== undefined) {
    const upstream = ctx.upstream as NonNullable<typeof ctx.upstream>;
    // RFC 9449 §7.1 / §7.2: DPoP for the proof refusals, where the upstream requires it, and to a DPoP caller.
    const dpop = info.scheme === 'DPoP' || upstream.dpopRequired || ctx.dpopPresented;
    const params: string[] = [`resource_metadata="${resourceMetadataUrl}"`];
    // RFC 6750 §3: a request without credentials gets no error code.
    if (info.oauthError !== undefined && (ctx.tokenPresented || info.oauthError !== 'invalid_token')) {
      params.push(`error="${info.oauthError}"`, `error_description="${info.description}"`);
    }
    const scopes = denial.scopes ?? ctx.upstream?.scopes ?? [];
    if (scopes.length > 0) params.push(`scope="${scopes.join(' ')}"`);
    // RFC 9449 §7.1: the DPoP challenge names the accepted proof algorithms.
    if (dpop) params.push(`algs="${upstream.dpopAlgorithms.join(' ')}"`);
    headers['www-authenticate'] = `${dpop ? 'DPoP' : 'Bearer'} ${params.join(', ')}`;
  }
  if (denial.dpopNonce !== undefined) headers['dpop-nonce'] = denial.dpopNonce;
  // A request body we refused without reading must not be parsed as the next request on this connection.
  if (!req.complete) headers['connection'] = 'close';
  const body = JSON.stringify(denial.rpcId !== undefined ? rpcError(denial, denial.rpcId) : {
    error: info.error,
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

function rpcError(denial: Denial, id: string | number | null): unknown {
  const info = reasons[denial.reason];
  const data: Record<string, unknown> = { ...denial.data, reason: denial.reason };
  if (denial.scopes !== undefined) data['scope'] = denial.scopes.join(' ');
  return { jsonrpc: '2.0', id, error: { code: info.rpcCodes[denial.era ?? 'sessions'], message: info.description, data } };
}
