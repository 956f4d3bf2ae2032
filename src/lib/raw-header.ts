import type { IncomingMessage } from 'node:http';

/**
 * How many copies of one header the client sent, and the last one's value. Node's req.headers keeps
 * only the first copy of some headers (Authorization, Host) and joins others, so duplicates are
 * counted on rawHeaders; names are compared case-insensitively, lowering only the names of the
 * right length (no req.headersDistinct, which would build arrays for every header).
 */
export function rawHeader(req: IncomingMessage, lowerName: string): { readonly count: number; readonly value: string | undefined } {
  let count = 0;
  let value: string | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === lowerName.length && (name === lowerName || name.toLowerCase() === lowerName)) {
      count++;
      value = raw[i + 1];
    }
  }
  return { count, value };
}
