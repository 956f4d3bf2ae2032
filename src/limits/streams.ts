import type { Principal } from '../auth/principal.ts';
import type { Config } from '../config/compile.ts';
import type { RequestContext } from '../observe/context.ts';
import type { StreamRegistry } from '../proxy/stream.ts';
import { deny } from '../reasons.ts';
import type { Step } from '../stage.ts';

export interface WithinLimits {
  readonly kind: 'within';
}

const WITHIN: WithinLimits = Object.freeze({ kind: 'within' });

export type StreamCap = (ctx: RequestContext, principal: Principal) => Step<WithinLimits>;

/** SC-155: an identity holds a bounded number of open streams; others are unaffected. */
export function createStreamCap(config: Config, streams: StreamRegistry): StreamCap {
  const max = config.limits.maxStreamsPerIdentity;
  return function capStreams(ctx, principal) {
    if (ctx.req.method === 'GET' && streams.countFor(principal) >= max) return deny('too_many_streams');
    return WITHIN;
  };
}
