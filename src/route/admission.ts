import type { UpstreamConfig } from '../config/compile.ts';
import { rawHeader } from '../lib/raw-header.ts';
import type { RequestContext } from '../observe/context.ts';
import { deny } from '../reasons.ts';
import { ANSWERED, type Step } from '../stage.ts';
import { createCors, type Cors } from './cors.ts';
import { framingProblem } from './framing.ts';
import type { Router } from './match.ts';
import type { WellKnown } from './well-known.ts';

/** A request the gateway will judge: the upstream it names and where it goes there. */
export interface Admitted {
  readonly upstream: UpstreamConfig;
  /** Path and query on the upstream. */
  readonly upstreamPath: string;
  /** The request's query parameters; undefined when the target has no query string. */
  readonly query: URLSearchParams | undefined;
}

export type Admission = (ctx: RequestContext) => Step<Admitted>;

const FORWARDED_METHODS = new Set(['GET', 'POST', 'DELETE']);
const HOST = /^[A-Za-z0-9.\-:\[\]]+$/;

/**
 * HTTP admission, before any credential is looked at: Host, public documents, route, Origin, CORS
 * preflight, method, framing. The CORS answers are built once per allowed origin.
 */
export function createAdmission(upstreams: readonly UpstreamConfig[], router: Router, wellKnown: WellKnown): Admission {
  const corsByUpstream = new Map<string, ReadonlyMap<string, Cors>>();
  for (const u of upstreams) corsByUpstream.set(u.name, new Map([...u.allowedOrigins].map((o) => [o, createCors(o)])));
  return function admit(ctx) {
    const { req, res } = ctx;
    // RFC 9112 §3.2: exactly one Host, and no userinfo in it (SC-115). Node keeps only the first.
    if (!hostIsSound(req.headers.host, rawHeader(req, 'host').count)) return deny('host_invalid');
    const target = req.url ?? '';
    const q = target.indexOf('?');
    if (wellKnown(req, res, q === -1 ? target : target.slice(0, q))) {
      ctx.record.outcome = 'public';
      return ANSWERED;
    }
    const routed = router(target);
    if (routed.kind === 'invalid') return deny('path_invalid');
    if (routed.kind === 'unknown') return deny('route_unknown');
    const { upstream } = routed;
    ctx.upstream = upstream;
    ctx.record.upstream = upstream.name;

    // MCP transports "Security Warning": an Origin that is present and not allowed gets 403 (DNS rebinding).
    const origin = req.headers.origin;
    const cors = origin === undefined ? undefined : corsByUpstream.get(upstream.name)?.get(origin);
    if (origin !== undefined) {
      if (cors === undefined) return deny('origin_forbidden');
      ctx.cors = cors.headers;
    }
    if (req.method === 'OPTIONS') {
      // CORS preflight is answered here and never forwarded (SC-128).
      ctx.record.outcome = 'public';
      res.writeHead(204, cors === undefined ? { 'content-length': '0' } : cors.preflight(req));
      res.end();
      return ANSWERED;
    }
    if (!FORWARDED_METHODS.has(req.method ?? '')) return deny('method_not_allowed');
    const framing = framingProblem(req);
    if (framing !== undefined) return framing;
    return { upstream, upstreamPath: routed.upstreamPath, query: routed.query };
  };
}

function hostIsSound(host: string | undefined, copies: number): boolean {
  return copies <= 1 && (host === undefined || HOST.test(host));
}
