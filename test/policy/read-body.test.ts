import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { readBody } from '../../src/policy/jsonrpc.ts';

// readBody takes a body the HTTP parser already holds whole in one read(); one still arriving is
// read by events. Both must give the same bytes and the same refusals.

/** A request as the parser leaves it: chunks pushed, and marked complete when the message ended. */
function request(chunks: readonly string[], complete: boolean, headers: readonly string[] = []): IncomingMessage {
  const req = new IncomingMessage(new Socket());
  req.method = 'POST';
  req.rawHeaders = [...headers];
  const fields: Record<string, string> = {};
  for (let i = 0; i < headers.length; i += 2) fields[(headers[i] as string).toLowerCase()] = headers[i + 1] as string;
  req.headers = fields;
  for (const c of chunks) req.push(Buffer.from(c));
  if (complete) {
    req.complete = true;
    req.push(null);
  }
  return req;
}

describe('readBody: a body received whole reads as one still arriving', () => {
  it('gives the exact bytes of a whole body, in one chunk or several, and of an empty one', async () => {
    for (const chunks of [['{"a":1}'], ['{"a"', ':1', '}'], []]) {
      const whole = readBody(request(chunks, true), 100);
      expect(whole).not.toBeInstanceOf(Promise);
      const late = request(chunks, false);
      const streamed = readBody(late, 100);
      expect(streamed).toBeInstanceOf(Promise);
      late.complete = true;
      late.push(null);
      expect(await streamed).toEqual(whole);
      expect((whole as Buffer).toString()).toBe(chunks.join(''));
    }
  });

  it('refuses a whole body over the cap (chunked, so no Content-Length said so) with 413', async () => {
    for (const chunks of [['x'.repeat(101)], ['x'.repeat(60), 'x'.repeat(41)]]) {
      expect(await readBody(request(chunks, true, ['Transfer-Encoding', 'chunked']), 100)).toMatchObject({ reason: 'body_too_large' });
    }
    expect(await readBody(request(['x'.repeat(100)], true), 100)).toBeInstanceOf(Buffer);
  });

  it('refuses a declared length over the cap before reading anything', () => {
    expect(readBody(request([], false, ['Content-Length', '101']), 100)).toMatchObject({ reason: 'body_too_large' });
  });
});
