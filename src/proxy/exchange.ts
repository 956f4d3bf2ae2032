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

/** Whether an upstream answer of this Content-Type is an SSE stream (the exchange and the response plan agree). */
export function isEventStream(type: string): boolean {
  // The usual answer's exact type needs no regex: it is not SSE.
  return type !== 'application/json' && SSE_TYPE.test(type);
}

/**
 * The AbortController of one upstream exchange (proxy.ts makes one per request; the client leaving or
 * the gateway ending an SSE stream calls abort()). abort() tells the exchange directly: a listener on
 * the signal cost an EventTarget registration and removal per request (issue 25), and the signal itself
 * is made only when someone reads it. Nothing else can abort the signal: it belongs to this controller.
 */
export class ExchangeAbort extends AbortController {
  #aborted = false;
  #onAbort: ((reason: Error) => void) | undefined;

  get aborted(): boolean {
    return this.#aborted;
  }

  /** The abort reason (the signal's), undefined until aborted. Nobody passes one: it is the default AbortError. */
  get reason(): Error | undefined {
    return this.#aborted ? (this.signal.reason as Error) : undefined;
  }

  override abort(reason?: unknown): void {
    super.abort(reason);
    if (this.#aborted) return; // like the signal's 'abort' event: once
    this.#aborted = true;
    const onAbort = this.#onAbort;
    this.#onAbort = undefined;
    onAbort?.(this.signal.reason as Error);
  }

  /** The exchange's hook (one exchange per controller); undefined removes it. */
  listen(onAbort: ((reason: Error) => void) | undefined): void {
    this.#onAbort = onAbort;
  }
}

/**
 * Resolves once the body is complete (collected bodies) or once the headers are in (streamed bodies).
 * Rejects with undici's error, or the abort reason, before that: a collected body that breaks off
 * never reached the client, so it becomes a clean 502.
 */
export function exchange(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, abort: ExchangeAbort, limits: BodyLimits): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    if (abort.aborted) return reject(abort.reason);
    dispatcher.dispatch(options, new ExchangeHandler(abort, limits, resolve, reject));
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
  // One timer per response: the headers deadline, then a body deadline (plain bodies) or an idle limit
  // re-armed by each chunk (SSE). `body` says which one it is now.
  private timer: NodeJS.Timeout | undefined;
  private body = false;
  private idle = false;
  private expired: UpstreamTimeout | undefined;
  private readonly abort: ExchangeAbort;
  private readonly limits: BodyLimits;
  private readonly resolve: (exchange: Exchange) => void;
  private readonly reject: (reason: unknown) => void;

  constructor(abort: ExchangeAbort, limits: BodyLimits, resolve: (exchange: Exchange) => void, reject: (reason: unknown) => void) {
    this.abort = abort;
    this.limits = limits;
    this.resolve = resolve;
    this.reject = reject;
    // A request still queued for a socket has no controller: it leaves the queue (rejected) at once.
    abort.listen((reason) => {
      if (this.controller !== undefined) return this.controller.abort(reason);
      this.settled();
      reject(reason);
    });
    this.timer = setTimeout(this.fired, limits.headersMs);
  }

  private readonly fired = (): void => {
    const c = this.controller;
    if (this.body) return void c?.abort(new UpstreamTimeout());
    // Until the headers: a request still queued for a socket has no controller yet, so the deadline
    // rejects and onRequestStart aborts it when a socket frees up (the abort reason is set then).
    this.expired = new UpstreamTimeout();
    if (c !== undefined) return c.abort(this.expired);
    this.settled();
    this.reject(this.expired);
  };

  onRequestStart(c: Controller): void {
    this.controller = c;
    if (this.abort.aborted) c.abort(this.abort.reason as Error);
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
    const sse = isEventStream(type);
    this.armBodyTimer(sse);
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
    this.abort.listen(undefined);
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private armBodyTimer(sse: boolean): void {
    const ms = sse ? this.limits.sseIdleMs : this.limits.deadlineMs;
    this.body = true;
    this.idle = sse && ms !== undefined;
    // The body deadline usually equals the headers one (bodyTimeoutMs defaults to timeoutMs): the same
    // timer restarts from now, as a new one would.
    if (this.timer !== undefined && ms === this.limits.headersMs) return void this.timer.refresh();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = ms === undefined ? undefined : setTimeout(this.fired, ms);
  }

  private toStream(c: Controller): Readable {
    const s = new Readable({
      read: () => c.resume(),
      destroy: (err, cb) => {
        if (this.timer !== undefined) clearTimeout(this.timer);
        // The consumer left before the end (client gone, stream ended by the gateway): stop the upstream.
        if (!this.ended && !c.aborted) c.abort((err ?? this.abort.reason) as Error);
        cb(err);
      },
    });
    this.stream = s;
    this.resolve({ statusCode: this.statusCode, headers: this.headers, body: { kind: 'stream', stream: s } });
    return s;
  }
}
