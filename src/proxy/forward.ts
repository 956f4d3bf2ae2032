import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Transform } from 'node:stream';
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

/** How the gateway treats one upstream response, decided when its headers arrive. */
export interface ResponsePlan {
  /** Streamed through (SSE listing filter). */
  readonly transform?: Transform;
  /** Read whole (at most maxBytes), then replaced; undefined from rewrite = refuse (fail closed). */
  readonly rewrite?: { readonly maxBytes: number; readonly apply: (body: Buffer) => Buffer | undefined };
  /** A streaming response is ended after this many ms (the token that opened it expires). */
  readonly endStreamAfterMs?: number;
  readonly onStreamEnded?: () => void;
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
  readonly abort: AbortController;
  /** Extra response headers from the gateway (CORS, request id). */
  readonly responseHeaders?: Record<string, string>;
  /** Rewrites upstream response headers and chooses the body treatment. */
  readonly onResponse?: (status: number, headers: OutgoingHttpHeaders) => ResponsePlan | undefined;
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
      signal: f.abort.signal,
      headersTimeout: f.upstream.timeoutMs,
      // SSE streams are long-lived by design; they end with the token or the client instead.
      bodyTimeout: 0,
    });
  } catch (err) {
    return { kind: 'failed', reason: upstreamReason(err), headersSent: false };
  }
  const upstreamMs = performance.now() - started;
  response.body.on('error', () => undefined);
  const headers = clientResponseHeaders(response.headers);
  if (f.responseHeaders !== undefined) Object.assign(headers, f.responseHeaders);
  const plan = f.onResponse?.(response.statusCode, headers);

  if (plan?.rewrite !== undefined) {
    const body = await readAll(response.body, plan.rewrite.maxBytes);
    const rewritten = body === undefined ? undefined : plan.rewrite.apply(body);
    if (rewritten === undefined) return { kind: 'failed', reason: 'upstream_unavailable', headersSent: false };
    headers['content-length'] = String(rewritten.length);
    f.res.writeHead(response.statusCode, headers);
    f.res.end(rewritten);
    return { kind: 'done', status: response.statusCode, upstreamMs };
  }

  if (plan?.transform !== undefined) delete headers['content-length'];
  f.res.writeHead(response.statusCode, headers);
  // Headers go out now, so an SSE client sees the stream open before the first event.
  f.res.flushHeaders();
  let timer: NodeJS.Timeout | undefined;
  let ended = false;
  if (plan?.endStreamAfterMs !== undefined) {
    timer = setTimeout(() => {
      // The token that opened this stream has expired: end it cleanly, upstream first.
      ended = true;
      f.abort.abort();
      f.res.end();
      plan.onStreamEnded?.();
    }, Math.max(0, plan.endStreamAfterMs));
    timer.unref();
  }
  try {
    if (plan?.transform !== undefined) await pipeline(response.body, plan.transform, f.res);
    else await pipeline(response.body, f.res);
  } catch {
    if (ended) return { kind: 'done', status: response.statusCode, upstreamMs };
    // Client gone or upstream reset mid-stream: both ends are torn down by pipeline; nothing to send.
    return { kind: 'failed', reason: 'upstream_unavailable', headersSent: true };
  } finally {
    clearTimeout(timer);
  }
  return { kind: 'done', status: response.statusCode, upstreamMs };
}

async function readAll(body: Dispatcher.ResponseData['body'], maxBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        body.destroy();
        return undefined;
      }
      chunks.push(chunk as Buffer);
    }
  } catch {
    return undefined;
  }
  return Buffer.concat(chunks, size);
}

function upstreamReason(err: unknown): Reason {
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) return 'upstream_timeout';
  if ((err as { name?: string }).name === 'TimeoutError') return 'upstream_timeout';
  return 'upstream_unavailable';
}
