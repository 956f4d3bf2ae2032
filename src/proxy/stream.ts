import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Principal } from '../auth/principal.ts';
import type { RpcMessage } from '../policy/jsonrpc.ts';
import type { Reason } from '../reasons.ts';

/**
 * Remembers whether the bytes sent so far stand at an SSE event boundary, so the gateway can add a
 * final event without cutting one of the upstream's in two. Not a stream of its own: one per open SSE
 * stream, seeing every chunk, so it keeps the last four characters as a small integer (two bits each:
 * LF, CR or other), with no allocation per chunk.
 */
export class SseTail {
  // Oldest character in the high bits; starts as "\n\n" (a stream opens at a boundary).
  #tail = (LF << 2) | LF;

  get atBoundary(): boolean {
    const last2 = this.#tail & 0b1111;
    return last2 === ((LF << 2) | LF) || last2 === ((CR << 2) | CR) || this.#tail === CRLF_CRLF;
  }

  saw(chunk: Buffer | string): void {
    let t = this.#tail;
    for (let i = Math.max(0, chunk.length - 4); i < chunk.length; i++) {
      const c = typeof chunk === 'string' ? chunk.charCodeAt(i) : (chunk[i] as number);
      t = ((t << 2) | (c === 10 ? LF : c === 13 ? CR : OTHER)) & 0xff;
    }
    this.#tail = t;
  }
}

const LF = 1;
const CR = 2;
const OTHER = 3;
const CRLF_CRLF = (CR << 6) | (LF << 4) | (CR << 2) | LF;

/** Parses upstream SSE bytes and returns the events to send on (the listing filter); throws to cut. */
export interface SseFilter {
  push(chunk: Buffer): string;
}

/**
 * An SSE body through a filter to the client, with backpressure, without a Transform stream per open
 * stream. The filter's throw cuts the stream (headers are out: nothing else can be said). An
 * unterminated last event is never sent (the filter holds it). Returns the function that stops it.
 */
export function pipeSseFiltered(body: Readable, filter: SseFilter, res: ServerResponse, tail: SseTail, fail: () => void, onEnd: () => void): () => void {
  const onData = (chunk: Buffer): void => {
    let out: string;
    try {
      out = filter.push(chunk);
    } catch {
      body.destroy();
      fail();
      return;
    }
    if (out === '') return;
    tail.saw(out);
    if (!res.write(out)) {
      body.pause();
      res.once('drain', () => body.resume());
    }
  };
  const finish = (): void => {
    onEnd();
    res.end();
  };
  body.on('data', onData);
  body.once('end', finish);
  return () => {
    body.off('data', onData);
    body.off('end', finish);
    body.pause();
  };
}

export type EndStream = (finalEvent?: string) => void;

/** What an open stream was judged on, so it can be judged again (issue 17 §5). */
export interface StreamGrant {
  /** The kid of the key that verified its token (JWT), if any. */
  readonly kid: string | undefined;
  /** The JSON-RPC messages of the POST it answers; none for a GET stream. */
  readonly messages: readonly RpcMessage[];
  /** Told why the gateway ends it (the audit line). */
  readonly onRevoked: (reason: Reason) => void;
}

export interface OpenStream {
  readonly upstream: string;
  readonly principal: Principal;
  readonly grant: StreamGrant | undefined;
}

/** The final event of a stream the gateway ends because it is no longer allowed (no retry: it would be refused). */
export function revokedEvent(reason: Reason): string {
  return `event: revoked\ndata: {"reason":"${reason}"}\n\n`;
}

/** Whose stream it is: issuer, subject and client together. */
function identityKey(p: Principal): string {
  return `${p.iss}\u0000${p.sub}\u0000${p.clientId ?? ''}`;
}

/**
 * Open SSE streams, so that shutdown can end each with a final event, metrics can count them, and one
 * identity cannot hold more than its share (SC-155).
 */
export class StreamRegistry {
  readonly #streams = new Map<EndStream, OpenStream>();
  readonly #perIdentity = new Map<string, number>();
  readonly #onChange: ((upstream: string, delta: 1 | -1) => void) | undefined;

  constructor(onChange?: (upstream: string, delta: 1 | -1) => void) {
    this.#onChange = onChange;
  }

  add(upstream: string, principal: Principal, end: EndStream, grant?: StreamGrant): () => void {
    const identity = identityKey(principal);
    this.#streams.set(end, { upstream, principal, grant });
    this.#perIdentity.set(identity, (this.#perIdentity.get(identity) ?? 0) + 1);
    this.#onChange?.(upstream, 1);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      this.#streams.delete(end);
      const left = (this.#perIdentity.get(identity) ?? 0) - 1;
      if (left <= 0) this.#perIdentity.delete(identity);
      else this.#perIdentity.set(identity, left);
      this.#onChange?.(upstream, -1);
    };
  }

  /** Open streams in all (the global cap, limits.maxStreams). */
  get size(): number {
    return this.#streams.size;
  }

  countFor(principal: Principal): number {
    return this.#perIdentity.get(identityKey(principal)) ?? 0;
  }

  endAll(finalEvent: string): void {
    for (const end of [...this.#streams.keys()]) end(finalEvent);
  }

  /** Ends, with a final `revoked` event, every stream `judge` no longer allows; returns how many. */
  endWhere(judge: (stream: OpenStream) => Reason | undefined): number {
    let ended = 0;
    for (const [end, stream] of [...this.#streams]) {
      const reason = judge(stream);
      if (reason === undefined) continue;
      stream.grant?.onRevoked(reason);
      end(revokedEvent(reason));
      ended++;
    }
    return ended;
  }
}
