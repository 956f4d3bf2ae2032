import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { decodeProtectedHeader } from 'jose';
import type { RpcMessage } from '../policy/jsonrpc.ts';
import type { Principal } from '../auth/principal.ts';
import type { Config, UpstreamConfig } from '../config/compile.ts';
import type { SessionBinder } from '../identity/session.ts';
import type { RequestRecord } from '../observe/record.ts';
import type { ResponsePlan } from './types.ts';
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
export type ResponsePlanner = (status: number, headers: OutgoingHttpHeaders) => ResponsePlan | undefined;

const SSE_TYPE = /^text\/event-stream/i;

/**
 * Response planning: the upstream's session id and SSE event ids are re-bound to the caller, an SSE
 * stream ends when the token that opened it expires, and listings are filtered to what the caller may use (listing-plan.ts).
 */
export function createResponsePlanning(deps: PlannerDeps): (record: RequestRecord, principal: Principal, upstream: UpstreamConfig, req: IncomingMessage, messages: readonly RpcMessage[]) => ResponsePlanner {
  const { config, sessions, streams } = deps;
  const maxListingBytes = config.limits.maxListingBytes;
  return (record, principal, upstream, req, messages) => function plan(status, h) {
    rebindSession(sessions, h, principal, upstream);
    const bindEventId = (id: string): string | undefined => sessions.bind(id, principal, upstream, 'event');
    const filtering = listingPlan(status, h, { principal, upstream, maxBytes: maxListingBytes, bindEventId });
    if (!SSE_TYPE.test(String(h['content-type'] ?? ''))) return filtering;
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
          kid: verifiedKid(req),
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

/** The kid of the (already verified) Bearer or DPoP JWT; undefined for opaque tokens. Only read for streams. */
function verifiedKid(req: IncomingMessage): string | undefined {
  // RFC 9449 §7.1: a DPoP-bound token comes under the DPoP scheme; its stream must end with its key too.
  const token = /^(?:bearer|dpop)\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  if (token === undefined || token.split('.').length !== 3) return undefined;
  try {
    const kid = decodeProtectedHeader(token).kid;
    return typeof kid === 'string' ? kid : undefined;
  } catch {
    return undefined;
  }
}

/** The upstream's Mcp-Session-Id leaves bound to this identity, or not at all. */
function rebindSession(sessions: SessionBinder, h: OutgoingHttpHeaders, principal: Principal, upstream: UpstreamConfig): void {
  const id = h['mcp-session-id'];
  if (id === undefined) return;
  const bound = typeof id === 'string' ? sessions.bind(id, principal, upstream) : undefined;
  if (bound === undefined) delete h['mcp-session-id'];
  else h['mcp-session-id'] = bound;
}
