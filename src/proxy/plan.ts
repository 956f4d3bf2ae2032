import type { OutgoingHttpHeaders } from 'node:http';
import type { RpcMessage } from '../policy/jsonrpc.ts';
import type { Principal } from '../auth/principal.ts';
import type { Config, UpstreamConfig } from '../config/compile.ts';
import type { SessionBinder } from '../identity/session.ts';
import type { RequestRecord } from '../observe/record.ts';
import type { ResponsePlan } from './types.ts';
import { isEventStream } from './exchange.ts';
import { listingPlan } from './listing-plan.ts';
import { SseEvents } from '../policy/sse-filter.ts';
import type { StreamRegistry } from './stream.ts';

export interface PlannerDeps {
  readonly config: Config;
  readonly sessions: SessionBinder;
  readonly streams: StreamRegistry;
  readonly now: () => number;
  readonly onStreamExpired?: (record: RequestRecord) => void;
}

/** Decides, when the upstream's headers arrive, how its answer reaches this caller. */
export type ResponsePlanner = (record: RequestRecord, principal: Principal, upstream: UpstreamConfig, messages: readonly RpcMessage[], status: number, headers: OutgoingHttpHeaders) => ResponsePlan | undefined;

/**
 * Response planning: the upstream's session id and SSE event ids are re-bound to the caller, an SSE
 * stream ends when the token that opened it expires, and listings are filtered to what the caller may use (listing-plan.ts).
 */
export function createResponsePlanning(deps: PlannerDeps): ResponsePlanner {
  const { config, sessions, streams } = deps;
  const maxListingBytes = config.limits.maxListingBytes;
  return function plan(record, principal, upstream, messages, status, h) {
    rebindSession(sessions, h, principal, upstream);
    const bindEventId = (id: string): string | undefined => sessions.bind(id, principal, upstream, 'event');
    const filtering = listingPlan(status, h, { principal, upstream, maxBytes: maxListingBytes, bindEventId });
    if (!isEventStream(String(h['content-type'] ?? ''))) return filtering;
    // An SSE stream never outlives the token that opened it (plus the issuer's skew).
    const skew = upstream.issuers.find((i) => i.name === principal.issuerName)?.clockSkewSeconds ?? 0;
    return {
      // Every SSE stream is parsed and re-emitted, so that each event id leaves bound to the caller.
      sseFilter: new SseEvents({ id: bindEventId }, maxListingBytes),
      ...filtering,
      sse: {
        // A break-glass stream ends with its grant too (README "Break-glass access"): no stream outlives expiresAt.
        endAfterMs: Math.min((principal.exp + skew) * 1000, principal.breakGlass?.expiresAtMs ?? Infinity) - deps.now(),
        registry: streams,
        principal,
        // What allowed it, to judge it again at reload, fail-closed or key removal (issue 17 §5).
        grant: {
          kid: principal.kid,
          messages,
          onRevoked: (reason) => {
            record.reason = reason;
          },
        },
        onExpired: () => {
          const grantEnded = principal.breakGlass !== undefined && deps.now() >= principal.breakGlass.expiresAtMs;
          record.reason = grantEnded ? 'break_glass_expired' : 'token_expired';
          deps.onStreamExpired?.(record);
        },
      },
    };
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
