import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

// One upstream request/response through undici's dispatch handler API rather than its request() API.
// request() wraps every response body in a Readable; the usual JSON-RPC answer is small, so it is
// collected straight into a Buffer here and later leaves in one write with the response headers, with
// no stream machinery. SSE and large or unknown-type bodies arrive as a Readable with backpressure.

/** Small bodies (declared length, or JSON of unknown length up to this size) are collected whole. */
export const WHOLE_BODY_BYTES = 64 * 1024;

export interface Exchange {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: { readonly kind: 'whole'; readonly buffer: Buffer } | { readonly kind: 'stream'; readonly stream: Readable };
}

/** How long an exchange may take (issue 17 §4, §8). */
export interface BodyLimits {
  /** Response headers must arrive this long after dispatch, time queued for a pool socket included. */
  readonly headersMs: number;
  /** A non-SSE body must be complete this long after its headers: a stalled upstream is cut. */
  readonly deadlineMs: number;
  /** An SSE stream with nothing from the upstream this long is cut; undefined = no idle limit. */
  readonly sseIdleMs: number | undefined;
}

/** The upstream passed a deadline (headers, body) or the SSE idle limit: 504 if nothing was sent yet, else a cut. */
export class UpstreamTimeout extends Error {
  constructor() {
    super('upstream timed out');
    this.name = 'UpstreamTimeout';
  }
}

type Controller = Parameters<NonNullable<Dispatcher.DispatchHandler['onRequestStart']>>[0];
const JSON_TYPE = /^application\/json\s*(?:;|$)/i;
const SSE_TYPE = /^text\/event-stream/i;

/**
 * Resolves once the body is complete (collected bodies) or once the headers are in (streamed bodies).
 * Rejects with undici's error, or the signal's reason, before that: a collected body that breaks off
 * never reached the client, so it becomes a clean 502.
 */
export function exchange(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, signal: AbortSignal, limits: BodyLimits): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    let controller: Controller | undefined;
    let statusCode = 0;
    let headers: Exchange['headers'] = {};
    // Exactly one sink at a time: collecting (chunks) until done or too large, then possibly a stream.
    let chunks: Buffer[] | undefined;
    let size = 0;
    let declared = NaN;
    let stream: Readable | undefined;
    let ended = false;
    // One timer per response: a deadline (plain bodies) or an idle limit re-armed by each chunk (SSE).
    let timer: NodeJS.Timeout | undefined;
    let idle = false;

    // A request still queued for a socket has no controller: it leaves the queue (rejected) at once.
    const onAbort = (): void => {
      if (controller !== undefined) return controller.abort(signal.reason);
      settled();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const settled = (): void => {
      signal.removeEventListener('abort', onAbort);
      if (timer !== undefined) clearTimeout(timer);
    };
    const armBodyTimer = (c: Controller, sse: boolean): void => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      const ms = sse ? limits.sseIdleMs : limits.deadlineMs;
      if (ms === undefined) return;
      idle = sse;
      timer = setTimeout(() => c.abort(new UpstreamTimeout()), ms);
    };
    // Until the headers: a request still queued for a socket has no controller yet, so the deadline
    // rejects and onRequestStart aborts it when a socket frees up (the signal is aborted then).
    let expired: UpstreamTimeout | undefined;
    timer = setTimeout(() => {
      expired = new UpstreamTimeout();
      if (controller !== undefined) return controller.abort(expired);
      settled();
      reject(expired);
    }, limits.headersMs);

    const toStream = (c: Controller): Readable => {
      const s = new Readable({
        read: () => c.resume(),
        destroy: (err, cb) => {
          if (timer !== undefined) clearTimeout(timer);
          // The consumer left before the end (client gone, stream ended by the gateway): stop the upstream.
          if (!ended && !c.aborted) c.abort(err ?? signal.reason);
          cb(err);
        },
      });
      stream = s;
      resolve({ statusCode, headers, body: { kind: 'stream', stream: s } });
      return s;
    };

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (signal.aborted) c.abort(signal.reason);
        else if (expired !== undefined) c.abort(expired);
      },
      onResponseStart(c, status, h) {
        statusCode = status;
        headers = h;
        // undici keeps the raw header Buffers (views of the socket chunk) on the controller for the whole
        // response; parsed into h, they are not needed, and an SSE stream lives for hours.
        c.rawHeaders = null;
        declared = Number(h['content-length'] ?? NaN);
        const type = String(h['content-type'] ?? '');
        const small = declared <= WHOLE_BODY_BYTES || (Number.isNaN(declared) && JSON_TYPE.test(type));
        const sse = SSE_TYPE.test(type);
        armBodyTimer(c, sse);
        if (small && !sse) chunks = [];
        else toStream(c);
      },
      onResponseData(c, chunk) {
        if (idle) timer?.refresh();
        if (chunks !== undefined) {
          size += chunk.length;
          // More than it declared: broken framing, none of it is used.
          if (size > declared) return c.abort(new Error('body longer than content-length'));
          chunks.push(chunk);
          if (size <= WHOLE_BODY_BYTES) return;
          // JSON of unknown length that turns out large: streamed from here, its start first.
          const s = toStream(c);
          for (const part of chunks) s.push(part);
          chunks = undefined;
          c.pause();
          return;
        }
        if (stream !== undefined && !stream.push(chunk)) c.pause();
      },
      onResponseEnd() {
        ended = true;
        settled();
        if (chunks !== undefined) {
          if (!Number.isNaN(declared) && size !== declared) return reject(new Error('body shorter than content-length'));
          resolve({ statusCode, headers, body: { kind: 'whole', buffer: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size) } });
        }
        stream?.push(null);
      },
      onResponseError(_c, err) {
        settled();
        // Before a stream exists nothing was handed out: reject (no-op once resolved otherwise).
        if (stream === undefined) return reject(err);
        if (!stream.destroyed) stream.destroy(err);
      },
    };
    dispatcher.dispatch(options, handler);
  });
}
