import { StringDecoder } from 'node:string_decoder';
import { Transform, type TransformCallback } from 'node:stream';
import type { Principal } from '../auth/principal.ts';
import type { UpstreamConfig } from '../config/compile.ts';
import { decide } from './decide.ts';

/** Listing method → the result array it returns and the call that array's items stand for. */
const LISTINGS: Readonly<Record<string, { readonly field: string; readonly call: string; readonly key: 'name' | 'uri' }>> = {
  'tools/list': { field: 'tools', call: 'tools/call', key: 'name' },
  'prompts/list': { field: 'prompts', call: 'prompts/get', key: 'name' },
  'resources/list': { field: 'resources', call: 'resources/read', key: 'uri' },
};

export function isListing(method: string): boolean {
  return Object.hasOwn(LISTINGS, method);
}

/** Whether listings of this upstream can differ per caller at all (no rules, default allow: never). */
export function filtersListings(upstream: UpstreamConfig): boolean {
  return upstream.rules.length > 0 || upstream.defaultAction === 'deny';
}

export type ListingRequests = ReadonlyMap<string | number, string>;

/**
 * Removes from a JSON-RPC response (object or batch array) the listed items the caller may not use:
 * a tool it may not call is not shown (SC-143). Returns undefined when nothing changed.
 */
export function filterMessage(doc: unknown, requests: ListingRequests, principal: Principal, upstream: UpstreamConfig): unknown | undefined {
  if (Array.isArray(doc)) {
    let changed = false;
    const out = doc.map((d) => {
      const f = filterMessage(d, requests, principal, upstream);
      if (f === undefined) return d;
      changed = true;
      return f;
    });
    return changed ? out : undefined;
  }
  if (typeof doc !== 'object' || doc === null) return undefined;
  const msg = doc as { id?: unknown; result?: unknown };
  if ((typeof msg.id !== 'string' && typeof msg.id !== 'number') || typeof msg.result !== 'object' || msg.result === null) return undefined;
  const method = requests.get(msg.id);
  const listing = method === undefined ? undefined : LISTINGS[method];
  if (listing === undefined) return undefined;
  const items = (msg.result as Record<string, unknown>)[listing.field];
  if (!Array.isArray(items)) return undefined;
  const kept = items.filter((item: unknown) => {
    const value = typeof item === 'object' && item !== null ? (item as Record<string, unknown>)[listing.key] : undefined;
    if (typeof value !== 'string') return false; // cannot be judged: not shown
    const call = listing.key === 'uri' ? { kind: 'rpc' as const, method: listing.call, uri: value } : { kind: 'rpc' as const, method: listing.call, name: value };
    return decide(principal, upstream, call).kind === 'allow';
  });
  return { ...msg, result: { ...(msg.result as object), [listing.field]: kept } };
}

/** A whole JSON response body: filtered copy, or the same bytes when nothing is filtered. */
export function filterJsonBody(body: Buffer, requests: ListingRequests, principal: Principal, upstream: UpstreamConfig): Buffer | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined; // an answer we cannot read is not passed on (fail closed)
  }
  const filtered = filterMessage(doc, requests, principal, upstream);
  return filtered === undefined ? body : Buffer.from(JSON.stringify(filtered));
}

const BOUNDARY = /\r\n\r\n|\n\n|\r\r/;

/**
 * SSE-aware listing filter: splits the stream into events and passes each one on as soon as it is
 * complete. An event that does not carry a listing answer is forwarded byte for byte; one that does is
 * re-emitted with its data filtered (its id/event fields kept). At most maxPending bytes wait for an
 * event's end.
 */
export function createSseFilter(requests: ListingRequests, principal: Principal, upstream: UpstreamConfig, maxPending: number): Transform {
  let pending = '';
  const decoder = new StringDecoder('utf8'); // a character split across chunks stays whole
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      pending += decoder.write(chunk);
      let out = '';
      let m: RegExpExecArray | null;
      while ((m = BOUNDARY.exec(pending)) !== null) {
        const event = pending.slice(0, m.index);
        out += filterEvent(event, requests, principal, upstream) + m[0];
        pending = pending.slice(m.index + m[0].length);
      }
      if (pending.length > maxPending) return cb(new Error('SSE event too large to inspect'));
      cb(null, out === '' ? undefined : out);
    },
    flush(cb: TransformCallback) {
      pending += decoder.end();
      cb(null, pending === '' ? undefined : filterEvent(pending, requests, principal, upstream));
    },
  });
}

function filterEvent(event: string, requests: ListingRequests, principal: Principal, upstream: UpstreamConfig): string {
  const lines = event.split(/\r\n|\n|\r/);
  const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(l.startsWith('data: ') ? 6 : 5));
  if (data.length === 0) return event;
  let doc: unknown;
  try {
    doc = JSON.parse(data.join('\n'));
  } catch {
    return event;
  }
  const filtered = filterMessage(doc, requests, principal, upstream);
  if (filtered === undefined) return event;
  const others = lines.filter((l) => !l.startsWith('data:'));
  return [...others, `data: ${JSON.stringify(filtered)}`].join('\n');
}
