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
    dispatcher.dispatch(options, new ExchangeHandler(signal, limits, resolve, reject));
  });
}

/** One upstream response's state: a class because this state lives across undici's callbacks (STYLE rule 12). */
class ExchangeHandler implements Dispatcher.DispatchHandler {
  private controller: Controller | undefined;
  private statusCode = 0;
  private headers: Exchange['headers'] = {};
  // Exactly one sink at a time: collecting (chunks) until done or too large, then possibly a stream.
  private chunks: Buffer[] | undefined;
  private size = 0;
  private declared = NaN;
  private stream: Readable | undefined;
  private ended = false;
  // One timer per response: a deadline (plain bodies) or an idle limit re-armed by each chunk (SSE).
  private timer: NodeJS.Timeout | undefined;
  private idle = false;
  private expired: UpstreamTimeout | undefined;
  private readonly onAbort: () => void;
  private readonly signal: AbortSignal;
  private readonly limits: BodyLimits;
  private readonly resolve: (exchange: Exchange) => void;
  private readonly reject: (reason: unknown) => void;

  constructor(signal: AbortSignal, limits: BodyLimits, resolve: (exchange: Exchange) => void, reject: (reason: unknown) => void) {
    this.signal = signal;
    this.limits = limits;
    this.resolve = resolve;
    this.reject = reject;
    // A request still queued for a socket has no controller: it leaves the queue (rejected) at once.
    this.onAbort = () => {
      if (this.controller !== undefined) return this.controller.abort(signal.reason);
      this.settled();
      reject(signal.reason);
    };
    signal.addEventListener('abort', this.onAbort, { once: true });
    // Until the headers: a request still queued for a socket has no controller yet, so the deadline
    // rejects and onRequestStart aborts it when a socket frees up (the signal is aborted then).
    this.timer = setTimeout(() => {
      this.expired = new UpstreamTimeout();
      if (this.controller !== undefined) return this.controller.abort(this.expired);
      this.settled();
      reject(this.expired);
    }, limits.headersMs);
  }

  onRequestStart(c: Controller): void {
    this.controller = c;
    if (this.signal.aborted) c.abort(this.signal.reason);
    else if (this.expired !== undefined) c.abort(this.expired);
  }

  onResponseStart(c: Controller, status: number, h: Exchange['headers']): void {
    this.statusCode = status;
    this.headers = h;
    // undici keeps the raw header Buffers (views of the socket chunk) on the controller for the whole
    // response; parsed into h, they are not needed, and an SSE stream lives for hours.
    c.rawHeaders = null;
    const declared = Number(h['content-length'] ?? NaN);
    this.declared = declared;
    const type = String(h['content-type'] ?? '');
    const small = declared <= WHOLE_BODY_BYTES || (Number.isNaN(declared) && JSON_TYPE.test(type));
    const sse = SSE_TYPE.test(type);
    this.armBodyTimer(c, sse);
    if (small && !sse) this.chunks = [];
    else this.toStream(c);
  }

  onResponseData(c: Controller, chunk: Buffer): void {
    if (this.idle) this.timer?.refresh();
    const chunks = this.chunks;
    if (chunks !== undefined) {
      this.size += chunk.length;
      // More than it declared: broken framing, none of it is used.
      if (this.size > this.declared) return c.abort(new Error('body longer than content-length'));
      chunks.push(chunk);
      if (this.size <= WHOLE_BODY_BYTES) return;
      // JSON of unknown length that turns out large: streamed from here, its start first.
      const s = this.toStream(c);
      for (const part of chunks) s.push(part);
      this.chunks = undefined;
      c.pause();
      return;
    }
    if (this.stream !== undefined && !this.stream.push(chunk)) c.pause();
  }

  onResponseEnd(): void {
    this.ended = true;
    this.settled();
    const chunks = this.chunks;
    if (chunks !== undefined) {
      if (!Number.isNaN(this.declared) && this.size !== this.declared) return this.reject(new Error('body shorter than content-length'));
      const buffer = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.size);
      this.resolve({ statusCode: this.statusCode, headers: this.headers, body: { kind: 'whole', buffer } });
    }
    this.stream?.push(null);
  }

  onResponseError(_c: Controller, err: Error): void {
    this.settled();
    // Before a stream exists nothing was handed out: reject (no-op once resolved otherwise).
    if (this.stream === undefined) return this.reject(err);
    if (!this.stream.destroyed) this.stream.destroy(err);
  }

  private settled(): void {
    this.signal.removeEventListener('abort', this.onAbort);
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private armBodyTimer(c: Controller, sse: boolean): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const ms = sse ? this.limits.sseIdleMs : this.limits.deadlineMs;
    if (ms === undefined) return;
    this.idle = sse;
    this.timer = setTimeout(() => c.abort(new UpstreamTimeout()), ms);
  }

  private toStream(c: Controller): Readable {
    const s = new Readable({
      read: () => c.resume(),
      destroy: (err, cb) => {
        if (this.timer !== undefined) clearTimeout(this.timer);
        // The consumer left before the end (client gone, stream ended by the gateway): stop the upstream.
        if (!this.ended && !c.aborted) c.abort(err ?? this.signal.reason);
        cb(err);
      },
    });
    this.stream = s;
    this.resolve({ statusCode: this.statusCode, headers: this.headers, body: { kind: 'stream', stream: s } });
    return s;
  }
}
