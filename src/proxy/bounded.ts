import type { OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { ForwardOutcome, ForwardRequest } from './types.ts';

// A body the gateway must read before any of it reaches the client (the listing filter's JSON), read
// up to a bound. Past the bound it is either refused or, when the plan allows, streamed on while a
// guard sees every chunk first and can cut it.

export type Bounded =
  | { readonly kind: 'whole'; readonly buffer: Buffer }
  | { readonly kind: 'over'; readonly head: Buffer; readonly rest: Readable }
  | { readonly kind: 'failed'; readonly error: unknown };

/** Reads until the end or until more than maxBytes arrived; then the rest stays paused, unread. */
export function readBounded(body: Readable, maxBytes: number): Promise<Bounded> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (result: Bounded): void => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (size <= maxBytes) return;
      body.pause();
      settle({ kind: 'over', head: Buffer.concat(chunks, size), rest: body });
    };
    const onEnd = (): void => settle({ kind: 'whole', buffer: Buffer.concat(chunks, size) });
    const onError = (error: unknown): void => settle({ kind: 'failed', error });
    body.on('error', () => undefined); // after settling too: a late error must not crash the process
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
  });
}

/**
 * Streams a body that went past the bound: the head (not yet sent) and each later chunk pass the guard
 * first. A guard refusing the head is a 502; refusing a later chunk cuts the response (headers are out).
 */
export function streamGuarded(f: ForwardRequest, status: number, headers: OutgoingHttpHeaders, over: { readonly head: Buffer; readonly rest: Readable }, guard: (chunk: Buffer) => boolean): Promise<ForwardOutcome> {
  const { head, rest } = over;
  if (!guard(head)) {
    rest.destroy();
    return Promise.resolve({ kind: 'failed', reason: 'upstream_unavailable', headersSent: f.res.headersSent });
  }
  f.res.writeHead(status, headers);
  f.res.write(head);
  return new Promise((resolve) => {
    rest.on('data', (chunk: Buffer) => {
      if (!guard(chunk)) {
        rest.destroy();
        f.res.destroy();
        return;
      }
      if (!f.res.write(chunk)) {
        rest.pause();
        f.res.once('drain', () => rest.resume());
      }
    });
    rest.once('end', () => f.res.end());
    rest.once('error', () => f.res.destroy());
    f.res.on('close', () => {
      if (!f.res.writableFinished) rest.destroy();
      resolve(f.res.writableFinished ? { kind: 'done', status } : { kind: 'failed', reason: 'upstream_unavailable', headersSent: true });
    });
    rest.resume();
  });
}

/**
 * A small request body read whole (an SSF poll or push, an admin call): past maxBytes the connection
 * is destroyed and nothing is answered; a stream error rejects.
 */
export async function readSmallBody(req: Readable & { destroy(): void }, maxBytes: number): Promise<Buffer | 'too_large'> {
  const read = await readBounded(req, maxBytes);
  if (read.kind === 'whole') return read.buffer;
  if (read.kind === 'failed') throw read.error;
  req.destroy();
  return 'too_large';
}
