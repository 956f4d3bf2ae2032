import type { OutgoingHttpHeaders } from 'node:http';
import type { Principal } from '../auth/principal.ts';
import type { Config, UpstreamConfig } from '../config/compile.ts';
import type { SessionBinder } from '../identity/session.ts';
import type { RequestRecord } from '../observe/record.ts';
import { createSseFilter, filterJsonBody, filtersListings, isListing, type ListingRequests } from '../policy/filter.ts';
import type { Inspected } from '../policy/jsonrpc.ts';
import type { ResponsePlan } from './forward.ts';
import type { StreamRegistry } from './stream.ts';

export interface PlannerDeps {
  readonly config: Config;
  readonly sessions: SessionBinder;
  readonly streams: StreamRegistry;
  readonly now: () => number;
  readonly onStreamExpired?: (record: RequestRecord) => void;
}

/** Decides, when the upstream's headers arrive, how its answer reaches this caller. */
export type ResponsePlanner = (status: number, headers: OutgoingHttpHeaders) => ResponsePlan | undefined;

const SSE_TYPE = /^text\/event-stream/i;
const JSON_TYPE = /^application\/json\s*(?:;|$)/i;
// Compressed or unknown bodies cannot be filtered: refused rather than leaked.
const REFUSE: ResponsePlan = Object.freeze({ rewrite: Object.freeze({ maxBytes: 0, apply: () => undefined }) });

/** Ids of listing requests whose answers must be filtered for this caller. */
export function listingRequests(inspected: Inspected | undefined, upstream: UpstreamConfig): ListingRequests {
  const out = new Map<string | number, string>();
  if (inspected === undefined || !filtersListings(upstream)) return out;
  for (const m of inspected.messages) if (m.kind === 'request' && m.id !== null && isListing(m.method)) out.set(m.id, m.method);
  return out;
}

/**
 * Response planning: the upstream's session id is re-bound to the caller, an SSE stream ends when the
 * token that opened it expires, and listings are filtered to what the caller may use.
 */
export function createResponsePlanning(deps: PlannerDeps): (record: RequestRecord, principal: Principal, upstream: UpstreamConfig, listings: ListingRequests) => ResponsePlanner {
  const { config, sessions, streams } = deps;
  const maxListingBytes = config.limits.maxListingBytes;
  return (record, principal, upstream, listings) => function plan(status, h) {
    rebindSession(sessions, h, principal, upstream);
    const type = String(h['content-type'] ?? '');
    const sse = SSE_TYPE.test(type);
    let out: { -readonly [K in keyof ResponsePlan]: ResponsePlan[K] } | undefined;
    if (sse) {
      // An SSE stream never outlives the token that opened it (plus the issuer's skew).
      const skew = upstream.issuers.find((i) => i.name === principal.issuerName)?.clockSkewSeconds ?? 0;
      out = {
        sse: {
          endAfterMs: (principal.exp + skew) * 1000 - deps.now(),
          registry: streams,
          principal,
          onExpired: () => {
            record.reason = 'token_expired';
            deps.onStreamExpired?.(record);
          },
        },
      };
    }
    if (listings.size > 0 && status === 200) {
      if (h['content-encoding'] !== undefined && h['content-encoding'] !== 'identity') return REFUSE;
      if (sse) out = { ...out, transform: createSseFilter(listings, principal, upstream, maxListingBytes) };
      else if (JSON_TYPE.test(type)) out = { rewrite: { maxBytes: maxListingBytes, apply: (body) => filterJsonBody(body, listings, principal, upstream) } };
    }
    return out;
  };
}

/** The upstream's Mcp-Session-Id leaves bound to this identity, or not at all. */
function rebindSession(sessions: SessionBinder, h: OutgoingHttpHeaders, principal: Principal, upstream: UpstreamConfig): void {
  const id = h['mcp-session-id'];
  if (id === undefined) return;
  const bound = typeof id === 'string' ? sessions.bind(id, principal, upstream) : undefined;
  if (bound === undefined) delete h['mcp-session-id'];
  else h['mcp-session-id'] = bound;
}
