import type { Principal } from '../auth/principal.ts';
import type { Outbound } from '../identity/forward-identity.ts';
import type { RequestContext } from '../observe/context.ts';
import type { Judged } from '../policy/authorize.ts';
import { deny } from '../reasons.ts';
import type { Admitted } from '../route/admission.ts';
import { ANSWERED, type Step } from '../stage.ts';
import { forward, type Pools } from './forward.ts';
import { ExchangeAbort } from './exchange.ts';
import { filtersListings } from '../policy/filter.ts';
import { createResponsePlanning, type PlannerDeps } from './plan.ts';
import { InFlight } from './load.ts';
import { injectTraceContext } from '../observe/trace.ts';
import { shareOf } from '../workers/share.ts';

export type Proxy = (ctx: RequestContext, admitted: Admitted, principal: Principal, judged: Judged, outbound: Outbound) => Promise<Step<never>>;

/** The proxy stage: the judged request goes to the upstream's pool; its answer streams back as planned. */
export function createProxy(deps: PlannerDeps & { readonly pools: Pools }): Proxy {
  const plan = createResponsePlanning(deps);
  const inFlight = new InFlight();
  const maxStreams = shareOf(deps.config.limits.maxStreams); // per worker of `serve --workers N`
  return async function proxy(ctx, { upstream, upstreamPath }, principal, { inspected }, { headers }) {
    const { req } = ctx;
    // Overload bounds (issue 17 §8), checked before any upstream work: GET opens a long-lived stream
    // (the global stream cap), every other method is a request (the upstream's in-flight cap).
    const stream = req.method === 'GET';
    if (stream && deps.streams.size >= maxStreams) return deny('streams_exhausted');
    if (!stream && !inFlight.take(upstream)) return deny('upstream_busy');
    try {
      if (deps.pools.health.ejectedFor(upstream) > 0) return deny('upstream_ejected');
      return await forwarded(ctx, upstream, upstreamPath, principal, inspected, headers);
    } finally {
      if (!stream) inFlight.release(upstream);
    }
  };

  async function forwarded(ctx: RequestContext, upstream: Admitted['upstream'], upstreamPath: string, principal: Principal, inspected: Judged['inspected'], headers: Outbound['headers']): Promise<Step<never>> {
    const { req, res, record } = ctx;
    // A connection that died while the request was judged (client gone, framing error after it) gets
    // nothing forwarded on its behalf.
    if (res.destroyed || !req.socket.writable) return deny('client_closed');
    // Every answer of an upstream with listing rules is read (listing-plan.ts): it must arrive uncompressed.
    if (filtersListings(upstream)) delete headers['accept-encoding'];
    injectTraceContext(ctx, headers);
    const messages = inspected?.messages ?? [];
    const abort = new ExchangeAbort();
    ctx.abort = abort;
    record.outcome = 'allow';
    const gatewayMs = performance.now() - record.perfStart;
    record.gatewaySeconds = gatewayMs / 1000;
    const outcome = await forward({
      req, res, upstream, dispatcher: deps.pools.get(upstream, req.method), path: upstreamPath, headers,
      body: inspected?.body ?? (hasBody(req) ? req : undefined), abort, responseHeaders: ctx.cors,
      onCut: (reason) => {
        record.reason = reason;
        if (reason === 'upstream_timeout') deps.pools.health.record(upstream, true);
      },
      onResponse: (status, h) => {
        record.upstreamMs = performance.now() - record.perfStart - gatewayMs;
        deps.pools.health.record(upstream, status >= 500);
        return plan(record, principal, upstream, messages, status, h);
      },
    });
    if (outcome.kind === 'done') return ANSWERED;
    // No answer at all, and not because the client left first.
    if (!outcome.headersSent && record.upstreamMs === undefined && !abort.aborted) deps.pools.health.record(upstream, true);
    if (!outcome.headersSent) return deny(outcome.reason);
    record.reason = outcome.reason;
    return ANSWERED;
  }
}

function hasBody(req: RequestContext['req']): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
}
