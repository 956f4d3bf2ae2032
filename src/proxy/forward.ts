import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Pool, errors as undiciErrors, type Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/compile.ts';
import type { Reason } from '../reasons.ts';
import { clientResponseHeaders } from './headers.ts';

// undici rather than http-proxy-3: one explicit connection pool per upstream made at start-up (STYLE
// rule 9), headers built by us field by field (nothing implicit is forwarded), an AbortSignal that ends
// the upstream exchange when the client leaves or the token expires, and a response body we pipe with
// backpressure ourselves, so SSE events pass one by one, unbuffered.

export interface Pools {
  get(upstream: UpstreamConfig): Dispatcher;
  close(): Promise<void>;
}

export function createPools(upstreams: readonly UpstreamConfig[]): Pools {
  const pools = new Map<string, Pool>();
  for (const u of upstreams) {
    pools.set(u.name, new Pool(u.target.origin, {
      connections: 256,
      pipelining: 1,
      keepAliveTimeout: 4_000,
      connectTimeout: Math.min(u.timeoutMs, 10_000),
    }));
  }
  return {
    get(upstream) {
      return pools.get(upstream.name) as Pool;
    },
    async close() {
      await Promise.all([...pools.values()].map((p) => p.close().catch(() => undefined)));
    },
  };
}

export interface ForwardRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly upstream: UpstreamConfig;
  readonly dispatcher: Dispatcher;
  readonly path: string;
  readonly headers: Record<string, string | string[]>;
  /** A body already read by the gateway (policy inspection) or the request stream itself. */
  readonly body: Buffer | IncomingMessage | undefined;
  readonly signal: AbortSignal;
  /** Extra response headers from the gateway (CORS, request id). */
  readonly responseHeaders?: Record<string, string>;
  /** Rewrites upstream response headers before they reach the client (session binding). */
  readonly rewriteResponseHeaders?: (headers: Record<string, unknown>) => void;
}

export type ForwardOutcome =
  | { readonly kind: 'done'; readonly status: number; readonly upstreamMs: number }
  | { readonly kind: 'failed'; readonly reason: Reason; readonly headersSent: boolean };

export async function forward(f: ForwardRequest): Promise<ForwardOutcome> {
  const started = performance.now();
  let response: Dispatcher.ResponseData;
  try {
    response = await f.dispatcher.request({
      origin: f.upstream.target.origin,
      path: f.path,
      method: f.req.method as Dispatcher.HttpMethod,
      headers: f.headers,
      body: f.body ?? null,
      signal: f.signal,
      headersTimeout: f.upstream.timeoutMs,
      // SSE streams are long-lived by design; an idle stream is closed by the stream guard instead.
      bodyTimeout: 0,
    });
  } catch (err) {
    return { kind: 'failed', reason: upstreamReason(err), headersSent: false };
  }
  const upstreamMs = performance.now() - started;
  const headers = clientResponseHeaders(response.headers);
  if (f.responseHeaders !== undefined) Object.assign(headers, f.responseHeaders);
  f.rewriteResponseHeaders?.(headers);
  f.res.writeHead(response.statusCode, headers);
  // Headers go out now, so an SSE client sees the stream open before the first event.
  f.res.flushHeaders();
  try {
    await pipeline(response.body, f.res);
  } catch {
    // Client gone or upstream reset mid-stream: both ends are torn down by pipeline; nothing to send.
    return { kind: 'failed', reason: f.signal.aborted ? 'upstream_timeout' : 'upstream_unavailable', headersSent: true };
  }
  return { kind: 'done', status: response.statusCode, upstreamMs };
}

function upstreamReason(err: unknown): Reason {
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) return 'upstream_timeout';
  if ((err as { name?: string }).name === 'TimeoutError') return 'upstream_timeout';
  return 'upstream_unavailable';
}
