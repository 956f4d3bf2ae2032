import type { Config, UpstreamConfig } from '../config/compile.ts';
import type { RequestContext } from '../observe/context.ts';
import { deny, isDenial, type Denial } from '../reasons.ts';
import type { Admitted } from '../route/admission.ts';
import type { Step } from '../stage.ts';
import { readBearer, type BearerToken } from './bearer.ts';
import { createEnvironmentCheck } from './environment.ts';
import type { Principal } from './principal.ts';
import type { SenderCheck } from './sender.ts';
import type { Authenticator } from './verify.ts';

/** Synchronous on the warm Bearer path (a cached token, no proof to verify): nothing is awaited. */
export type Authentication = (ctx: RequestContext, admitted: Admitted) => Step<Principal> | Promise<Step<Principal>>;

const FORM_TYPE = /^application\/x-www-form-urlencoded\b/i;

/**
 * The authenticate stage: exactly one credential (Bearer or DPoP), verified for this upstream's audience,
 * then held to its sender constraint (RFC 9449) on every request, cached token or not.
 */
export function createAuthentication(config: Config, authenticator: Authenticator, sender: SenderCheck): Authentication {
  const checkEnvironment = createEnvironmentCheck(config);
  const opaqueFor = new Set(config.upstreams.filter((u) => u.issuers.some((i) => i.introspection !== undefined)).map((u) => u.name));
  /** The verified token's principal, held to its environment and sender binding. */
  const hold = (ctx: RequestContext, bearer: BearerToken, proof: string | undefined, principal: Principal | Denial, upstream: UpstreamConfig): Step<Principal> | Promise<Step<Principal>> => {
    if (isDenial(principal)) return principal;
    // Recorded before the binding check: a refused proof names whose token was used without its key.
    ctx.record.iss = principal.iss;
    ctx.record.sub = principal.sub;
    ctx.record.clientId = principal.clientId;
    const misplaced = checkEnvironment(principal); // a token for another environment (README "Environment profiles")
    if (misplaced !== undefined) return misplaced;
    const unproven = sender.check(ctx.req, bearer, proof, principal, upstream);
    return unproven instanceof Promise ? unproven.then((denial) => denial ?? principal) : unproven ?? principal;
  };
  return function authenticate(ctx, { upstream, query }) {
    const { req } = ctx;
    const bearer = readBearer(req, query, config.limits.maxTokenBytes, opaqueFor.has(upstream.name));
    ctx.tokenPresented = req.headers.authorization !== undefined;
    if (isDenial(bearer)) return bearer;
    ctx.dpopPresented = bearer.scheme === 'dpop';
    // RFC 6750 §2.2 form-encoded body tokens are not supported; beside a header token they are a second method.
    if (FORM_TYPE.test(req.headers['content-type'] ?? '')) return deny('credentials_conflict');
    const proof = sender.readProof(req, bearer, upstream); // syntax only, before any key is used
    if (isDenial(proof)) return proof;
    const principal = authenticator(bearer.token, upstream);
    return principal instanceof Promise ? principal.then((p) => hold(ctx, bearer, proof, p, upstream)) : hold(ctx, bearer, proof, principal, upstream);
  };
}
