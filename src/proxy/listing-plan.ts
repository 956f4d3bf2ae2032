import type { OutgoingHttpHeaders } from 'node:http';
import type { Principal } from '../auth/principal.ts';
import type { UpstreamConfig } from '../config/compile.ts';
import { createListingGuard, filterJsonBody, filterJsonText, filtersListings } from '../policy/filter.ts';
import { SseEvents } from '../policy/sse-filter.ts';
import type { ResponsePlan } from './types.ts';
import { boundedMemo } from '../lib/bounded-memo.ts';

// Listing filter, fail closed (issue 15, point 8). On an upstream whose listings can differ per caller,
// EVERY response body reaches the client only through the gateway's parser: JSON read whole and
// filtered, SSE parsed event by event and re-emitted. The status does not matter (a listing under 203
// or 500 is still a listing), nor which request or stream carries it (see policy/filter.ts). A body the
// gateway cannot parse (another content type, another charset, compressed) is refused with 502: MCP
// answers are JSON or SSE, and clients sniff types, so "not JSON" cannot be trusted to mean "unread".

export interface ListingContext {
  readonly principal: Principal;
  readonly upstream: UpstreamConfig;
  /** Bound of a JSON body or of one SSE event (limits.maxListingBytes). */
  readonly maxBytes: number;
  /** The caller's id for an upstream SSE event id (identity/session.ts). */
  readonly bindEventId: (upstreamId: string) => string | undefined;
}

const REFUSE: ResponsePlan = Object.freeze({ refuse: true });
// A body that cannot be read is refused, but no body at all (202 Accepted without a length) is fine.
const ONLY_EMPTY: ResponsePlan = Object.freeze({ rewrite: Object.freeze({ maxBytes: 0, apply: (body: Buffer) => (body.length === 0 ? body : undefined) }) });

/** The body treatment for one upstream response; undefined = this upstream's listings are not filtered. */
export function listingPlan(status: number, h: OutgoingHttpHeaders, ctx: ListingContext): ResponsePlan | undefined {
  if (!filtersListings(ctx.upstream)) return undefined;
  // RFC 9110 §6.4.1: 204 and 304 carry no body; nor does an empty one.
  if (status === 204 || status === 304 || h['content-length'] === '0') return undefined;
  // A compressed body cannot be read (the gateway asks for none): refused rather than passed unread.
  const encoding = h['content-encoding'];
  if (encoding !== undefined && String(encoding).trim().toLowerCase() !== 'identity') return REFUSE;
  const type = h['content-type'];
  if (Array.isArray(type)) return REFUSE;
  switch (readableAs(String(type ?? ''))) {
    case 'refuse':
      return REFUSE;
    case 'sse': {
      const { principal, upstream } = ctx;
      return { sseFilter: new SseEvents({ id: ctx.bindEventId, data: (data) => filterJsonText(data, principal, upstream) }, ctx.maxBytes) };
    }
    case 'json':
      return { rewrite: { maxBytes: ctx.maxBytes, apply: (body) => filterJsonBody(body, ctx.principal, ctx.upstream), beyond: createListingGuard } };
    case 'other':
      // Any other type, or none: only an empty body passes.
      return ONLY_EMPTY;
  }
}

type Readability = 'refuse' | 'sse' | 'json' | 'other';

// An upstream sends the same one or two Content-Type values on every answer: what each one means is
// kept (64 values of at most 128 characters, whatever an upstream sends) instead of parsed anew per
// response (issue 25). The meaning depends on the text alone.
const readableAs = boundedMemo(64, 128, classify);

function classify(type: string): Readability {
  const full = type.toLowerCase();
  const media = (full.split(';', 1)[0] as string).trim();
  // Clients sniff: the MCP SDK reads any type that *contains* "text/event-stream" or "application/json".
  // A type naming both cannot be read one way with certainty.
  if (full.includes('json') && full.includes('event-stream')) return 'refuse';
  if (media === 'text/event-stream') return 'sse';
  if (media !== 'application/json') return 'other';
  // RFC 8259 §8.1: JSON between systems is UTF-8; another charset would be read differently by a client.
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/.exec(full)?.[1];
  return charset !== undefined && charset !== 'utf-8' && charset !== 'utf8' ? 'refuse' : 'json';
}
