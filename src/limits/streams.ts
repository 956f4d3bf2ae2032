import type { Principal } from '../auth/principal.ts';
import type { Config } from '../config/compile.ts';
import type { RequestContext } from '../observe/context.ts';
import type { Judged } from '../policy/authorize.ts';
import type { StreamRegistry } from '../proxy/stream.ts';
import { deny } from '../reasons.ts';
import type { Step } from '../stage.ts';
import { shareOf } from '../workers/share.ts';

export interface WithinLimits {
  readonly kind: 'within';
}

const WITHIN: WithinLimits = Object.freeze({ kind: 'within' });

export type StreamCap = (ctx: RequestContext, principal: Principal, judged: Judged) => Step<WithinLimits>;

/**
 * SC-155: an identity holds a bounded number of open streams; others are unaffected. A stream is
 * opened by GET up to 2025-11-25 and by a subscriptions/listen POST from 2026-07-28 (its answer stays
 * open); both count against the same cap, whichever era the client speaks.
 */
export function createStreamCap(config: Config, streams: StreamRegistry): StreamCap {
  // Each of `serve --workers N` holds its own streams: it allows 1/N of the cap.
  const max = shareOf(config.limits.maxStreamsPerIdentity);
  return function capStreams(ctx, principal, { inspected }) {
    const opens = ctx.req.method === 'GET' || inspected?.messages.some((m) => m.method === 'subscriptions/listen') === true;
    if (opens && streams.countFor(principal) >= max) return deny('too_many_streams');
    return WITHIN;
  };
}
