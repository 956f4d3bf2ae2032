import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config, UpstreamConfig } from './config/compile.ts';
import { readBearer } from './auth/bearer.ts';
import type { Authenticator } from './auth/verify.ts';
import { decide } from './policy/decide.ts';
import type { AssertionMinter } from './identity/assertion.ts';
import type { SessionBinder } from './identity/session.ts';
import type { Principal } from './auth/principal.ts';
import { upstreamRequestHeaders } from './proxy/headers.ts';
import { forward, type Pools } from './proxy/forward.ts';
import type { Router } from './route/match.ts';
import type { WellKnown } from './route/well-known.ts';
import { deny, isDenial, type Denial } from './reasons.ts';
import { sendDenial } from './respond.ts';
import { newRecord, type RequestRecord } from './observe/record.ts';

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
}

const FORWARDED_METHODS = new Set(['GET', 'POST', 'DELETE']);
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * The request pipeline, in its one declared order (STYLE rule 1):
 * public endpoints → route → origin → method → authenticate → authorize → forward identity → proxy → observe.
 * No stage can be skipped by configuration.
 */
export function createPipeline(deps: PipelineDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { config } = deps;
  return async function handle(req, res) {
    const incomingId = req.headers['x-request-id'];
    const requestId = typeof incomingId === 'string' && REQUEST_ID.test(incomingId) ? incomingId : randomUUID();
    const record = newRecord(requestId, req.method ?? '', deps.now());
    res.setHeader('x-request-id', requestId);
    res.once('close', () => {
      record.status ??= res.statusCode;
      deps.onRecord(record);
    });
    let upstream: UpstreamConfig | undefined;
    let tokenPresented = false;
    const refuse = (denial: Denial, extraHeaders?: Record<string, string>): void => {
      record.outcome = denial.reason === 'upstream_unavailable' || denial.reason === 'upstream_timeout' || denial.reason === 'internal_error' ? 'error' : 'deny';
      record.reason = denial.reason;
      sendDenial(req, res, denial, {
        resourceMetadataUrl: upstream?.resourceMetadataUrl,
        tokenPresented,
        defaultScopes: upstream?.scopes ?? [],
        ...(extraHeaders === undefined ? {} : { extraHeaders }),
      });
    };
    try {
      // RFC 9112 §3.2: exactly one Host, and no userinfo in it (SC-115). Node keeps only the first.
      if (!hostIsSound(req)) return refuse(deny('host_invalid'));
      const target = req.url ?? '';
      const pathOnly = target.split('?', 1)[0] as string;
      if (deps.wellKnown(req, res, pathOnly)) {
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
      const cors = origin === undefined ? undefined : corsHeaders(origin);
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
      if (isDenial(bearer)) return refuse(bearer, cors);
      // RFC 6750 §2.2 form-encoded body tokens are not supported; beside a header token they are a second method.
      if (/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) return refuse(deny('credentials_conflict'), cors);

      const principal = await deps.authenticate(bearer.token, upstream);
      if (isDenial(principal)) return refuse(principal, cors);
      record.iss = principal.iss;
      record.sub = principal.sub;
      record.clientId = principal.clientId;

      const decision = decide(principal, upstream, { httpMethod: req.method ?? '' });
      if (isDenial(decision)) return refuse(decision, cors);

      const session = deps.sessions.check(singleHeader(req, 'mcp-session-id'), principal, upstream);
      if (session.kind === 'malformed') return refuse(deny('session_invalid'), cors);
      if (session.kind === 'foreign') return refuse(deny('session_unknown'), cors);

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

      // RFC 9110 §10.1.1: 100-continue only once the request is authorized (SC-109).
      if (/100-continue/i.test(req.headers.expect ?? '')) res.writeContinue();

      const abort = new AbortController();
      res.once('close', () => {
        if (!res.writableFinished) abort.abort();
      });
      record.outcome = 'allow';
      const outcome = await forward({
        req, res, upstream, dispatcher: deps.pools.get(upstream), path: routed.upstreamPath, headers,
        body: hasBody(req) ? req : undefined, signal: abort.signal,
        ...(cors === undefined ? {} : { responseHeaders: cors }),
        rewriteResponseHeaders: (h) => {
          const id = h['mcp-session-id'];
          if (id === undefined) return;
          const bound = typeof id === 'string' ? deps.sessions.bind(id, principal, upstream as UpstreamConfig) : undefined;
          if (bound === undefined) delete h['mcp-session-id'];
          else h['mcp-session-id'] = bound;
        },
      });
      if (outcome.kind === 'done') {
        record.upstreamMs = outcome.upstreamMs;
      } else if (!outcome.headersSent) {
        refuse(deny(outcome.reason), cors);
      } else {
        record.reason = outcome.reason;
      }
    } catch {
      // Never a stack trace to the client (SC-179); the audit line records the failure.
      refuse(deny('internal_error'));
    }
  };
}

function hostIsSound(req: IncomingMessage): boolean {
  let hosts = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === 'host') hosts++;
  if (hosts > 1) return false;
  const host = req.headers.host;
  return host === undefined || /^[A-Za-z0-9.\-:\[\]]+$/.test(host);
}

/** A header's value when it was sent exactly once; several copies make it malformed (joined by Node). */
function singleHeader(req: IncomingMessage, name: string): string | undefined {
  const values = req.headersDistinct[name];
  if (values === undefined) return undefined;
  return values.length === 1 ? values[0] : '\u0000';
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
