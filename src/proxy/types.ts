// The shapes forward.ts works with, in a file of its own so that the helpers it calls (bounded.ts) name
// them without importing forward.ts back.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Principal } from '../auth/principal.ts';
import type { UpstreamConfig } from '../config/compile.ts';
import type { Reason } from '../reasons.ts';
import type { ExchangeAbort } from './exchange.ts';
import type { SseFilter, StreamGrant, StreamRegistry } from './stream.ts';

/** How the gateway treats one upstream response, decided when its headers arrive. */
export interface ResponsePlan {
  /** Refused before anything reaches the client: 502 (a listing the gateway cannot read, fail closed). */
  readonly refuse?: true;
  /** SSE parsed and re-emitted event by event (the listing filter); throws to cut the stream. */
  readonly sseFilter?: SseFilter;
  /** Read whole (at most maxBytes), then replaced; undefined from rewrite = refuse (fail closed). */
  readonly rewrite?: {
    readonly maxBytes: number;
    readonly apply: (body: Buffer) => Buffer | undefined;
    /**
     * Past maxBytes: streamed while the guard this makes accepts each chunk (cut at the first it
     * refuses); absent = 502. A maker, so that a body within the bound costs no guard.
     */
    readonly beyond?: () => (chunk: Buffer) => boolean;
  };
  /** An SSE stream: ended after endAfterMs (the token that opened it expires) or by shutdown. */
  readonly sse?: {
    readonly endAfterMs: number;
    readonly onExpired: () => void;
    readonly registry: StreamRegistry;
    /** Whose stream it is, for the per-identity cap. */
    readonly principal: Principal;
    /** What allowed it, to judge it again later. */
    readonly grant?: StreamGrant;
  };
}

export interface ForwardRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly upstream: UpstreamConfig;
  readonly dispatcher: Dispatcher;
  readonly path: string;
  readonly headers: Record<string, string | string[]>;
  /** A body already read by the gateway (policy inspection) or the request stream itself. */
  readonly body: Buffer | IncomingMessage | undefined;
  readonly abort: ExchangeAbort;
  /** Extra response headers from the gateway (CORS, request id). */
  readonly responseHeaders?: Readonly<Record<string, string>> | undefined;
  /** Told why a response whose headers were out is cut, before the cut (its record closes with it). */
  readonly onCut?: (reason: Reason) => void;
  /** Rewrites upstream response headers and chooses the body treatment. */
  readonly onResponse?: (status: number, headers: OutgoingHttpHeaders) => ResponsePlan | undefined;
}

export type ForwardOutcome =
  | { readonly kind: 'done'; readonly status: number }
  | { readonly kind: 'failed'; readonly reason: Reason; readonly headersSent: boolean };
