import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from './config/compile.ts';
import { createAuthentication } from './auth/authenticate.ts';
import { createBreakGlass } from './auth/break-glass.ts';
import type { SenderCheck } from './auth/sender.ts';
import type { Authenticator } from './auth/verify.ts';
import type { AssertionMinter } from './identity/assertion.ts';
import { createIdentityForwarding } from './identity/forward-identity.ts';
import type { SessionBinder } from './identity/session.ts';
import type { CallLimiter } from './limits/calls.ts';
import { createStreamCap } from './limits/streams.ts';
import { openContext } from './observe/context.ts';
import type { RequestRecord } from './observe/record.ts';
import type { StageTracer } from './observe/trace.ts';
import { authorizeMessages, authorizeUpstream } from './policy/authorize.ts';
import { createMessageReader } from './policy/messages.ts';
import type { Pools } from './proxy/forward.ts';
import { createProxy } from './proxy/proxy.ts';
import type { StreamRegistry } from './proxy/stream.ts';
import { deny } from './reasons.ts';
import { createRevocationCheck, type RevocationView } from './revoke/stage.ts';
import { settle } from './respond.ts';
import { createAdmission } from './route/admission.ts';
import type { Router } from './route/match.ts';
import type { WellKnown } from './route/well-known.ts';
import { halted } from './stage.ts';

export interface PipelineDeps {
  readonly config: Config;
  readonly router: Router;
  readonly wellKnown: WellKnown;
  readonly authenticate: Authenticator;
  readonly checkSender: SenderCheck;
  readonly mintAssertion: AssertionMinter;
  readonly sessions: SessionBinder;
  readonly pools: Pools;
  readonly now: () => number;
  readonly onRecord: (record: RequestRecord) => void;
  readonly onStreamExpired?: (record: RequestRecord) => void;
  readonly streams: StreamRegistry;
  readonly limitCalls: CallLimiter;
  /** Names each stage for tracing (observe/trace.ts); returns the stage itself when tracing is off. */
  readonly traced: StageTracer;
  readonly revocations: RevocationView;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** Every stage built once from deps, by name (bench/stages.ts times each alone on the real code). */
export function createStages(deps: PipelineDeps) {
  const { config, traced } = deps;
  return {
    admit: traced('admission', createAdmission(config.upstreams, deps.router, deps.wellKnown)),
    authenticate: traced('authenticate', createAuthentication(config, deps.authenticate, deps.checkSender)),
    checkRevocation: traced('revocation', createRevocationCheck(deps.revocations)),
    checkBreakGlass: traced('break-glass', createBreakGlass(config, deps.now)),
    authorizeUpstream: traced('authorize.upstream', authorizeUpstream),
    readMessages: traced('messages', createMessageReader(config)),
    authorizeMessages: traced('authorize.messages', authorizeMessages),
    capStreams: traced('limits.streams', createStreamCap(config, deps.streams)),
    limitCalls: traced('limits.calls', deps.limitCalls),
    forwardIdentity: traced('forward-identity', createIdentityForwarding(config, deps.sessions, deps.mintAssertion)),
    proxy: traced('proxy', createProxy(deps)),
  } as const;
}

/**
 * The request pipeline in its one declared order (STYLE rule 1). Each stage lives in the folder of its
 * concern and returns what it produced, a Denial, or "answered"; the first that halts ends the request.
 * No stage can be skipped by configuration.
 */
export function createPipeline(deps: PipelineDeps): Handler {
  const {
    admit, authenticate, checkRevocation, checkBreakGlass, authorizeUpstream: authorizeUpstreamOf, readMessages,
    authorizeMessages: authorizeEach, capStreams, limitCalls, forwardIdentity, proxy,
  } = createStages(deps);

  return async function handle(req, res) {
    const ctx = openContext(req, res, deps.now, deps.onRecord);
    try {
      const admitted = admit(ctx); // host, public documents, route, origin, method, framing
      if (halted(admitted)) return settle(ctx, admitted);
      const authenticated = await authenticate(ctx, admitted); // one bearer token, verified for this upstream's audience
      if (halted(authenticated)) return settle(ctx, authenticated);
      const live = checkRevocation(ctx, authenticated); // revoked jti, subject or client (SSF), cached token or not
      if (halted(live)) return settle(ctx, live);
      const principal = checkBreakGlass(ctx, admitted, live); // a break-glass grant's window and limits
      if (halted(principal)) return settle(ctx, principal);
      const allowed = authorizeUpstreamOf(ctx, admitted, principal); // client allow-list, upstream scopes
      if (halted(allowed)) return settle(ctx, allowed);
      const messages = await readMessages(ctx); // protocol version, body admission, JSON-RPC messages
      if (halted(messages)) return settle(ctx, messages);
      const judged = authorizeEach(ctx, admitted, principal, messages.inspected); // every message's rule
      if (halted(judged)) return settle(ctx, judged);
      const within = capStreams(ctx, principal, judged); // open streams per identity
      if (halted(within)) return settle(ctx, within);
      const rated = await limitCalls(ctx, admitted, principal, judged); // rate limits, quotas (refused calls cost nothing)
      if (halted(rated)) return settle(ctx, rated);
      const outbound = await forwardIdentity(ctx, admitted, principal); // session and event-id binding, header allow-list, signed assertion
      if (halted(outbound)) return settle(ctx, outbound);
      settle(ctx, await proxy(ctx, admitted, principal, judged, outbound)); // the upstream exchange and the response plan
    } catch {
      // Never a stack trace to the client (SC-179); the audit line records the failure.
      settle(ctx, deny('internal_error'));
    }
  };
}
