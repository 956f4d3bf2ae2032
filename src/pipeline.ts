import { randomUUID } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Config, UpstreamConfig } from './config/compile.ts';
import { readBearer } from './auth/bearer.ts';
import type { Authenticator } from './auth/verify.ts';
import type { Principal } from './auth/principal.ts';
import { decide, decideAll } from './policy/decide.ts';
import { inspect, protocolVersion, readBody, type Inspected } from './policy/jsonrpc.ts';
import { admitBody } from './policy/body.ts';
import { createSseFilter, filterJsonBody, filtersListings, isListing, type ListingRequests } from './policy/filter.ts';
import type { AssertionMinter } from './identity/assertion.ts';
import type { SessionBinder } from './identity/session.ts';
import { upstreamRequestHeaders } from './proxy/headers.ts';
import { forward, type Pools, type ResponsePlan } from './proxy/forward.ts';
import type { StreamRegistry } from './proxy/stream.ts';
import type { Router } from './route/match.ts';
import type { WellKnown } from './route/well-known.ts';
import { deny, isDenial, type Denial } from './reasons.ts';
import { sendDenial } from './respond.ts';
import { newRecord, type RequestRecord } from './observe/record.ts';
import { rawHeader } from './lib/raw-header.ts';

export interface PipelineDeps {
  readonly config: Config;
  readonly router: Router;
  readonly wellKnown: WellKnown;
  readonly authenticate: Authenticator;
  readonly mintAssertion: AssertionMinter;
  readonly sessions: SessionBinder;
  readonly pools: Pools;
  readonly now: () => number;
  readonly onRecord: (record: RequestRecord) => void;
  readonly onStreamExpired?: (record: RequestRecord) => void;
  readonly streams: StreamRegistry;
}

const FORWARDED_METHODS = new Set(['GET', 'POST', 'DELETE']);
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;
const JSON_TYPE = /^application\/json\s*(?:;|$)/i;

/**
 * The request pipeline, in its one declared order (STYLE rule 1):
 * public endpoints → route → origin → method → authenticate → authorize (upstream, then JSON-RPC body)
 * → session binding → forward identity → proxy (listing filter, stream end at token expiry) → observe.
 * No stage can be skipped by configuration.
 */
export function createPipeline(deps: PipelineDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { config } = deps;
  return async function handle(req, res) {
    const incomingId = req.headers['x-request-id'];
    const requestId = typeof incomingId === 'string' && REQUEST_ID.test(incomingId) ? incomingId : randomUUID();
    const traceparent = req.headers['traceparent'];
    const record = newRecord(requestId, req.method ?? '', deps.now(), typeof traceparent === 'string' && traceparent.length <= 128 ? traceparent : undefined);
    res.setHeader('x-request-id', requestId);
    // One 'close' listener per request ('close' fires once): the audit record, then, for a forwarded
    // request the client left early, the end of the upstream exchange.
    let abort: AbortController | undefined;
    res.on('close', () => {
      record.status ??= res.statusCode;
      deps.onRecord(record);
      if (abort !== undefined && !res.writableFinished) abort.abort();
    });
    let upstream: UpstreamConfig | undefined;
    let tokenPresented = false;
    let cors: Record<string, string> | undefined;
    const refuse = (denial: Denial): void => {
      record.outcome = denial.reason === 'upstream_unavailable' || denial.reason === 'upstream_timeout' || denial.reason === 'internal_error' ? 'error' : 'deny';
      record.reason = denial.reason;
      sendDenial(req, res, denial, {
        resourceMetadataUrl: upstream?.resourceMetadataUrl,
        tokenPresented,
        defaultScopes: upstream?.scopes ?? [],
        ...(cors === undefined ? {} : { extraHeaders: cors }),
      });
    };
    try {
      // RFC 9112 §3.2: exactly one Host, and no userinfo in it (SC-115). Node keeps only the first.
      if (!hostIsSound(req)) return refuse(deny('host_invalid'));
      const target = req.url ?? '';
      if (deps.wellKnown(req, res, target.split('?', 1)[0] as string)) {
        record.outcome = 'public';
        return;
      }
      const routed = deps.router(target);
      if (routed.kind === 'invalid') return refuse(deny('path_invalid'));
      if (routed.kind === 'unknown') return refuse(deny('route_unknown'));
      upstream = routed.upstream;
      record.upstream = upstream.name;

      // MCP transports "Security Warning": an Origin that is present and not allowed gets 403 (DNS rebinding).
      const origin = req.headers.origin;
      if (origin !== undefined && !upstream.allowedOrigins.has(origin)) return refuse(deny('origin_forbidden'));
      cors = origin === undefined ? undefined : corsHeaders(origin);
      if (req.method === 'OPTIONS') {
        // CORS preflight is answered here and never forwarded (SC-128).
        record.outcome = 'public';
        res.writeHead(204, { ...cors, 'access-control-max-age': '600', 'content-length': '0' });
        res.end();
        return;
      }
      if (!FORWARDED_METHODS.has(req.method ?? '')) return refuse(deny('method_not_allowed'));

      const bearer = readBearer(req, routed.query, config.limits.maxTokenBytes, upstream.issuers.some((i) => i.introspection !== undefined));
      tokenPresented = req.headers.authorization !== undefined;
      if (isDenial(bearer)) return refuse(bearer);
      // RFC 6750 §2.2 form-encoded body tokens are not supported; beside a header token they are a second method.
      if (/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) return refuse(deny('credentials_conflict'));

      const principal = await deps.authenticate(bearer.token, upstream);
      if (isDenial(principal)) return refuse(principal);
      record.iss = principal.iss;
      record.sub = principal.sub;
      record.clientId = principal.clientId;

      // Authorize: upstream-wide rules first (no body needed), then every JSON-RPC message of a POST.
      const base = decide(principal, upstream, { kind: 'http' });
      if (isDenial(base)) return refuse(base);
      const version = protocolVersion(req);
      if (version === undefined) return refuse(deny('protocol_version_unsupported'));
      const unreadable = admitBody(req);
      if (unreadable !== undefined) return refuse(unreadable);
      // RFC 9110 §10.1.1: 100-continue only once the caller is authenticated and may use this upstream
      // (SC-109); the body it then sends is what the policy reads.
      if (/100-continue/i.test(req.headers.expect ?? '')) res.writeContinue();
      let inspected: Inspected | undefined;
      if (req.method === 'POST') {
        const body = await readBody(req, config.limits.maxBodyBytes);
        if (isDenial(body)) return refuse(body);
        const result = inspect(body, version, req, config.limits.maxBatchLength);
        if (isDenial(result)) return refuse(result);
        inspected = result;
        const first = result.messages[0];
        record.rpcMethod = result.batch ? `batch(${result.messages.length})` : first?.method;
        record.tool = result.batch ? undefined : first?.name ?? first?.uri;
        // A batch is refused whole when any element is denied: no partial forwarding (SC-136).
        const verdict = decideAll(principal, upstream, result.messages);
        if ('denial' in verdict) {
          record.rpcMethod = verdict.message.method;
          record.tool = verdict.message.name ?? verdict.message.uri;
          return refuse(verdict.denial);
        }
        record.rule = verdict.allow.rule;
      }

      // SC-155: an identity holds a bounded number of open streams; others are unaffected.
      if (req.method === 'GET' && deps.streams.countFor(identityKey(principal)) >= config.limits.maxStreamsPerIdentity) return refuse(deny('too_many_streams'));

      const session = deps.sessions.check(singleHeader(req, 'mcp-session-id'), principal, upstream);
      if (session.kind === 'malformed') return refuse(deny('session_invalid'));
      if (session.kind === 'foreign') return refuse(deny('session_unknown'));

      const assertion = await deps.mintAssertion(principal, upstream);
      const headers = upstreamRequestHeaders(req, config.identity.header);
      delete headers['mcp-session-id'];
      if (session.kind === 'bound') headers['mcp-session-id'] = session.upstreamId;
      headers[config.identity.header.toLowerCase()] = assertion;
      if (upstream.identity.informationalHeaders) Object.assign(headers, informationalHeaders(principal));
      headers['x-request-id'] = requestId;
      headers['x-forwarded-proto'] = config.publicUrl.protocol.slice(0, -1);
      headers['x-forwarded-host'] = config.publicUrl.host;
      const remote = req.socket.remoteAddress;
      if (remote !== undefined) headers['x-forwarded-for'] = remote;
      const listings = listingRequests(inspected, upstream);
      // A listing we may have to filter must arrive readable, not compressed.
      if (listings.size > 0) delete headers['accept-encoding'];

      abort = new AbortController();
      record.outcome = 'allow';
      record.gatewaySeconds = (performance.now() - record.perfStart) / 1000;
      const bound = upstream;
      const outcome = await forward({
        req, res, upstream, dispatcher: deps.pools.get(upstream), path: routed.upstreamPath, headers,
        body: inspected?.body ?? (hasBody(req) ? req : undefined), abort,
        ...(cors === undefined ? {} : { responseHeaders: cors }),
        onResponse: (status, h) => {
          record.upstreamMs = performance.now() - record.perfStart - (record.gatewaySeconds ?? 0) * 1000;
          rebindSession(h, principal, bound);
          return responsePlan(status, h, listings, principal, bound);
        },
      });
      if (outcome.kind === 'failed') {
        if (!outcome.headersSent) refuse(deny(outcome.reason));
        else record.reason = outcome.reason;
      }
    } catch {
      // Never a stack trace to the client (SC-179); the audit line records the failure.
      refuse(deny('internal_error'));
    }

    function rebindSession(h: OutgoingHttpHeaders, principal: Principal, u: UpstreamConfig): void {
      const id = h['mcp-session-id'];
      if (id === undefined) return;
      const bound = typeof id === 'string' ? deps.sessions.bind(id, principal, u) : undefined;
      if (bound === undefined) delete h['mcp-session-id'];
      else h['mcp-session-id'] = bound;
    }

    function responsePlan(status: number, h: OutgoingHttpHeaders, listings: ListingRequests, principal: Principal, u: UpstreamConfig): ResponsePlan | undefined {
      const type = String(h['content-type'] ?? '');
      const sse = /^text\/event-stream/i.test(type);
      let plan: { -readonly [K in keyof ResponsePlan]: ResponsePlan[K] } | undefined;
      if (sse) {
        // An SSE stream never outlives the token that opened it (plus the issuer's skew).
        const skew = u.issuers.find((i) => i.name === principal.issuerName)?.clockSkewSeconds ?? 0;
        plan = {
          sse: {
            endAfterMs: (principal.exp + skew) * 1000 - deps.now(),
            registry: deps.streams,
            identity: identityKey(principal),
            onExpired: () => {
              record.reason = 'token_expired';
              deps.onStreamExpired?.(record);
            },
          },
        };
      }
      if (listings.size > 0 && status === 200) {
        // Compressed or unknown bodies cannot be filtered: refused rather than leaked.
        if (h['content-encoding'] !== undefined && h['content-encoding'] !== 'identity') return { rewrite: { maxBytes: 0, apply: () => undefined } };
        if (sse) plan = { ...plan, transform: createSseFilter(listings, principal, u, config.limits.maxListingBytes) };
        else if (JSON_TYPE.test(type)) plan = { rewrite: { maxBytes: config.limits.maxListingBytes, apply: (body) => filterJsonBody(body, listings, principal, u) } };
      }
      return plan;
    }
  };
}

function identityKey(p: Principal): string {
  return `${p.iss}\u0000${p.sub}\u0000${p.clientId ?? ''}`;
}

/** Ids of listing requests whose answers must be filtered for this caller. */
function listingRequests(inspected: Inspected | undefined, upstream: UpstreamConfig): ListingRequests {
  const out = new Map<string | number, string>();
  if (inspected === undefined || !filtersListings(upstream)) return out;
  for (const m of inspected.messages) if (m.kind === 'request' && m.id !== null && isListing(m.method)) out.set(m.id, m.method);
  return out;
}

function hostIsSound(req: IncomingMessage): boolean {
  if (rawHeader(req, 'host').count > 1) return false;
  const host = req.headers.host;
  return host === undefined || /^[A-Za-z0-9.\-:\[\]]+$/.test(host);
}

/** A header's value when it was sent exactly once; several copies make it malformed. */
function singleHeader(req: IncomingMessage, name: string): string | undefined {
  const { count, value } = rawHeader(req, name);
  if (count === 0) return undefined;
  return count === 1 ? value : '\u0000';
}

/** Plain headers beside the assertion; values outside visible ASCII are percent-encoded. */
function informationalHeaders(p: Principal): Record<string, string> {
  const safe = (v: string): string => (/^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v));
  const out: Record<string, string> = { 'x-mcp-subject': safe(p.sub), 'x-mcp-scopes': safe([...p.scopes].join(' ')) };
  if (p.clientId !== undefined) out['x-mcp-client-id'] = safe(p.clientId);
  return out;
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
}

function corsHeaders(origin: string): Record<string, string> {
  // Only ever the caller's own, allowed origin, never "*" (SC-128).
  return {
    'access-control-allow-origin': origin,
    'access-control-allow-methods': 'GET, POST, DELETE',
    'access-control-allow-headers': 'authorization, content-type, accept, mcp-session-id, mcp-protocol-version, last-event-id, mcp-method, mcp-name',
    'access-control-expose-headers': 'mcp-session-id, www-authenticate, x-request-id',
    vary: 'Origin',
  };
}
