import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { Pool, errors as undiciErrors, type Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/compile.ts';
import type { Reason } from '../reasons.ts';
import { readBounded, streamGuarded, type Bounded } from './bounded.ts';
import { UpstreamTimeout, exchange, type Exchange } from './exchange.ts';
import { clientResponseHeaders } from './headers.ts';
import { withCors } from '../route/cors.ts';
import { UpstreamHealth } from './outlier.ts';
import { pipeSseFiltered, SseTail, type SseFilter } from './stream.ts';
import type { ForwardOutcome, ForwardRequest, ResponsePlan } from './types.ts';

export type { ForwardOutcome, ForwardRequest, ResponsePlan } from './types.ts';

// undici rather than http-proxy-3: one explicit connection pool per upstream made at start-up (STYLE
// rule 9), headers built by us field by field (nothing implicit is forwarded), an AbortSignal that ends
// the upstream exchange when the client leaves or the token expires, and a response body we pipe with
// backpressure ourselves, so SSE events pass one by one, unbuffered.

export interface Pools {
  /** GET (the long-lived SSE stream) goes to the upstream's stream pool, every other method to its request pool. */
  get(upstream: UpstreamConfig, method?: string): Dispatcher;
  /** Passive outlier detection for the upstreams that configure it. */
  readonly health: UpstreamHealth;
  close(): Promise<void>;
}

/**
 * Two pools per upstream, with its TLS/mTLS material read once (a missing file refuses start or
 * reload). Requests: at most maxConnections sockets (issue 17 §8: a hanging upstream got 1,380), the
 * queue bounded by maxInFlight. GET streams: each holds a socket for its whole life, so a cap would
 * queue new streams behind old ones; limits.maxStreams and maxStreamsPerIdentity bound them instead.
 */
export function createPools(upstreams: readonly UpstreamConfig[], readFile: (path: string) => Buffer, now: () => number = Date.now): Pools {
  const pools = new Map<string, { readonly requests: Pool; readonly streams: Pool }>();
  for (const u of upstreams) {
    const pool = (connections: number | null): Pool => createPool(u, connections, readFile);
    pools.set(u.name, { requests: pool(u.maxConnections), streams: pool(null) });
  }
  return {
    health: new UpstreamHealth(upstreams, now),
    get(upstream, method) {
      const p = pools.get(upstream.name) as { readonly requests: Pool; readonly streams: Pool };
      return method === 'GET' ? p.streams : p.requests;
    },
    async close() {
      await Promise.all([...pools.values()].flatMap((p) => [p.requests, p.streams]).map((p) => p.close().catch(() => undefined)));
    },
  };
}

function createPool(u: UpstreamConfig, connections: number | null, readFile: (path: string) => Buffer): Pool {
  const tls = u.tls;
  return new Pool(u.target.origin, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 4_000,
    connectTimeout: Math.min(u.timeoutMs, 10_000),
    ...(tls === undefined ? {} : {
      connect: {
        ...(tls.caFile === undefined ? {} : { ca: readFile(tls.caFile) }),
        ...(tls.certFile === undefined ? {} : { cert: readFile(tls.certFile) }),
        ...(tls.keyFile === undefined ? {} : { key: readFile(tls.keyFile) }),
        ...(tls.serverName === undefined ? {} : { servername: tls.serverName }),
        rejectUnauthorized: true,
      },
    }),
  });
}

export async function forward(f: ForwardRequest): Promise<ForwardOutcome> {
  let response: Exchange;
  try {
    response = await exchangeWith(f);
  } catch (err) {
    return { kind: 'failed', reason: upstreamReason(err), headersSent: false };
  }
  const status = response.statusCode;
  const headers = clientResponseHeaders(response.headers);
  if (f.responseHeaders !== undefined) withCors(headers, f.responseHeaders);
  const plan = f.onResponse?.(status, headers);
  const body = response.body;

  if (plan?.refuse === true) {
    if (body.kind === 'stream') body.stream.destroy();
    return broken(f);
  }
  if (plan?.rewrite !== undefined) return sendRewritten(f, status, headers, body, plan.rewrite);
  if (body.kind === 'whole' && plan === undefined) return sendWhole(f, status, headers, body.buffer);
  return sendStream(f, status, headers, body, plan);
}

function exchangeWith(f: ForwardRequest): Promise<Exchange> {
  return exchange(f.dispatcher, {
    origin: f.upstream.target.origin,
    path: f.path,
    method: f.req.method as Dispatcher.HttpMethod,
    headers: f.headers,
    body: f.body ?? null,
    headersTimeout: f.upstream.timeoutMs,
    // undici's per-chunk idle timer is off: exchange() applies a whole-body deadline to plain answers
    // and the configured idle limit to SSE, which is long-lived by design (issue 17 §4).
    bodyTimeout: 0,
  }, f.abort, { headersMs: f.upstream.timeoutMs, deadlineMs: f.upstream.bodyTimeoutMs, sseIdleMs: f.upstream.sseIdleMs });
}

/** The plan reads the body whole (bounded) and replaces it; past the bound it is guarded or refused. */
function sendRewritten(f: ForwardRequest, status: number, headers: OutgoingHttpHeaders, body: Exchange['body'], rewrite: NonNullable<ResponsePlan['rewrite']>): ForwardOutcome | Promise<ForwardOutcome> {
  // A body collected whole is answered at once, without a promise of its own (issue 25).
  if (body.kind === 'whole') return sendRead(f, status, headers, body, rewrite);
  return readBounded(body.stream, rewrite.maxBytes).then((read) => sendRead(f, status, headers, read, rewrite));
}

function sendRead(f: ForwardRequest, status: number, headers: OutgoingHttpHeaders, read: Bounded, rewrite: NonNullable<ResponsePlan['rewrite']>): ForwardOutcome | Promise<ForwardOutcome> {
  if (read.kind === 'failed' && read.error instanceof UpstreamTimeout) return { kind: 'failed', reason: 'upstream_timeout', headersSent: f.res.headersSent };
  if (read.kind === 'over' && rewrite.beyond !== undefined) return streamGuarded(f, status, headers, read, rewrite.beyond());
  if (read.kind === 'over') read.rest.destroy();
  const rewritten = read.kind !== 'whole' || read.buffer.length > rewrite.maxBytes ? undefined : rewrite.apply(read.buffer);
  if (rewritten === undefined) return broken(f);
  headers['content-length'] = String(rewritten.length);
  f.res.writeHead(status, headers);
  f.res.end(rewritten);
  return { kind: 'done', status };
}

/** The usual JSON-RPC answer, complete before anything reached the client: headers and body leave in one write. */
function sendWhole(f: ForwardRequest, status: number, headers: OutgoingHttpHeaders, buffer: Buffer): Promise<ForwardOutcome> {
  // A chunked answer now has a known length (never on 204/304, which carry no body).
  if (headers['content-length'] === undefined && status !== 204 && status !== 304) headers['content-length'] = String(buffer.length);
  f.res.writeHead(status, headers);
  f.res.end(buffer);
  return new Promise((resolve) => {
    const done = (): void => resolve(f.res.writableFinished ? { kind: 'done', status } : { kind: 'failed', reason: 'upstream_unavailable', headersSent: true });
    if (f.res.closed) done();
    else f.res.on('close', done);
  });
}

/** Streamed bodies, and whole ones a plan filters or ends: piped, as SSE when the plan says so. */
function sendStream(f: ForwardRequest, status: number, headers: OutgoingHttpHeaders, body: Exchange['body'], plan: ResponsePlan | undefined): Promise<ForwardOutcome> {
  const stream = body.kind === 'stream' ? body.stream : Readable.from([body.buffer], { objectMode: false });
  stream.on('error', () => undefined);
  // The listing filter comes with an SSE plan (same content type); without one nothing is passed unread.
  if (plan?.sseFilter !== undefined && plan.sse === undefined) {
    stream.destroy();
    return Promise.resolve(broken(f));
  }
  if (plan?.sseFilter !== undefined) delete headers['content-length'];
  f.res.writeHead(status, headers);
  if (plan?.sse !== undefined) {
    // Headers go out now, so an SSE client sees the stream open before the first event.
    f.res.flushHeaders();
    return streamSse(f, stream, status, plan.sseFilter, plan.sse);
  }
  return pipeBody(f, stream, status);
}

/** The upstream answer is unusable: 502 when the client is still there, nothing otherwise. */
function broken(f: ForwardRequest): ForwardOutcome {
  return { kind: 'failed', reason: 'upstream_unavailable', headersSent: f.res.destroyed || f.res.headersSent };
}

/**
 * SSE: piped by hand (backpressure via pipe) so the gateway can end the stream cleanly, at an event
 * boundary: when the token that opened it expires, or on shutdown with a final event.
 */
function streamSse(f: ForwardRequest, body: Readable, status: number, filter: SseFilter | undefined, sse: NonNullable<ResponsePlan['sse']>): Promise<ForwardOutcome> {
  return new Promise((resolve) => {
    const tail = new SseTail();
    let ended = false;
    let stop = (): void => undefined;
    const end = (finalEvent?: string): void => {
      if (ended) return;
      ended = true;
      stop();
      f.res.end(finalEvent !== undefined && tail.atBoundary ? finalEvent : undefined);
      f.abort.abort();
    };
    const clearDeadline = expireAfter(sse.endAfterMs, () => {
      end();
      sse.onExpired();
    });
    const unregister = sse.registry.add(f.upstream.name, sse.principal, end, sse.grant);
    let reason: Reason = 'upstream_unavailable';
    const fail = (err?: unknown): void => {
      if (err instanceof UpstreamTimeout) reason = 'upstream_timeout';
      if (ended) return;
      f.onCut?.(reason);
      // A silent stream past its idle limit ends cleanly at an event boundary: the client reconnects.
      if (reason === 'upstream_timeout' && tail.atBoundary) end();
      else f.res.destroy();
    };
    body.on('error', fail);
    stop = pipeSse(f.res, body, filter, tail, fail, () => {
      ended = true;
    });
    f.res.on('close', () => {
      clearDeadline();
      unregister();
      if (!ended) f.abort.abort();
      resolve(f.res.writableFinished ? { kind: 'done', status } : { kind: 'failed', reason, headersSent: true });
    });
  });
}

/** Calls expired once endAfterMs have passed; returns what cancels it. */
function expireAfter(endAfterMs: number, expired: () => void): () => void {
  // setTimeout fires at once for delays past 2^31-1 ms (~24.8 days): re-arm until the real deadline.
  const deadline = Date.now() + Math.max(0, endAfterMs);
  let timer: NodeJS.Timeout;
  const arm = (): void => {
    const left = deadline - Date.now();
    timer = setTimeout(() => {
      if (Date.now() < deadline) return arm();
      expired();
    }, Math.min(Math.max(0, left), 2 ** 31 - 1));
    timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
}

/** Pipes the SSE body to the client, through the listing filter when there is one; returns what stops it. */
function pipeSse(res: ServerResponse, body: Readable, filter: SseFilter | undefined, tail: SseTail, fail: (err?: unknown) => void, onEnd: () => void): () => void {
  if (filter !== undefined) return pipeSseFiltered(body, filter, res, tail, fail, onEnd);
  body.on('end', onEnd);
  // Every chunk pipe() hands to the client passes the tail first (same 'data' event), no extra stream.
  body.on('data', (chunk: Buffer | string) => tail.saw(chunk));
  body.pipe(res);
  return () => body.unpipe(res);
}

function upstreamReason(err: unknown): Reason {
  if (err instanceof UpstreamTimeout) return 'upstream_timeout';
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) return 'upstream_timeout';
  if ((err as { name?: string }).name === 'TimeoutError') return 'upstream_timeout';
  return 'upstream_unavailable';
}

/** Plain body: pipe() with backpressure, without stream/promises' per-call AbortController and DOMException. */
function pipeBody(f: ForwardRequest, body: Readable, status: number): Promise<ForwardOutcome> {
  return new Promise((resolve) => {
    let reason: Reason = 'upstream_unavailable';
    const fail = (err: unknown): void => {
      if (err instanceof UpstreamTimeout) reason = 'upstream_timeout';
      f.onCut?.(reason);
      body.destroy();
      f.res.destroy();
    };
    body.once('error', fail);
    f.res.on('close', () => {
      if (!f.res.writableFinished) body.destroy();
      resolve(f.res.writableFinished ? { kind: 'done', status } : { kind: 'failed', reason, headersSent: true });
    });
    body.pipe(f.res);
  });
}
