import type { BreakGlassGrant, Config } from '../config/compile.ts';
import type { RequestContext } from '../observe/context.ts';
import { deny, type Reason } from '../reasons.ts';
import type { Admitted } from '../route/admission.ts';
import type { Step } from '../stage.ts';
import type { Principal } from './principal.ts';

export type BreakGlassCheck = (ctx: RequestContext, admitted: Admitted, principal: Principal) => Step<Principal>;

/** What break-glass says of one principal at one upstream and instant. */
export interface BreakGlassVerdict {
  /** The grant that names the token (admitting it, or refusing it); undefined = none does. */
  readonly grant: BreakGlassGrant | undefined;
  /** undefined = admitted (by `grant`, or as an ordinary token when no grant names it). */
  readonly reason: Reason | undefined;
}

export type BreakGlassJudge = (principal: Principal, upstream: string, nowMs: number) => BreakGlassVerdict;

const ORDINARY: BreakGlassVerdict = Object.freeze({ grant: undefined, reason: undefined });

/**
 * Break-glass rules (README "Break-glass access"), as one pure judgement the stage and the re-judging of
 * open streams share. A token a grant names has passed every normal check already; it is admitted only
 * inside the grant's window, [activatedAt, expiresAt) read from the clock, and within the grant's
 * upstreams, scopes, token lifetime and required claims. A token of a break-glass-only issuer or client
 * that no grant names is refused, so removing a grant never turns its tokens into ordinary ones.
 */
export function createBreakGlassJudge(config: Config): BreakGlassJudge {
  const grants = config.breakGlass;
  const issuers = new Map(config.issuers.map((i) => [i.name, i]));
  return function judgeBreakGlass(principal, upstream, nowMs) {
    const issuer = issuers.get(principal.issuerName);
    const guarded = issuer?.breakGlassOnly === true || (principal.clientId !== undefined && issuer?.breakGlassClients?.has(principal.clientId) === true);
    const matching = grants.filter((g) => g.issuer === principal.issuerName && (g.clientId === undefined || g.clientId === principal.clientId));
    if (matching.length === 0) return guarded ? { grant: undefined, reason: 'break_glass_inactive' } : ORDINARY;
    const open = matching.find((g) => g.activatedAtMs <= nowMs && nowMs < g.expiresAtMs);
    if (open === undefined) {
      return { grant: matching[0], reason: matching.some((g) => nowMs < g.activatedAtMs) ? 'break_glass_inactive' : 'break_glass_expired' };
    }
    // Only an open stream's principal carries a grant (plan.ts timed it to that expiresAt): when a reload
    // brought expiresAt forward, its timer would run to the old end, so it ends now; a new stream gets the new one.
    if (principal.breakGlass !== undefined && principal.breakGlass.expiresAtMs > open.expiresAtMs) return { grant: open, reason: 'break_glass_expired' };
    return { grant: open, reason: limitProblem(open, upstream, principal) };
  };
}

/**
 * The break-glass stage: a grant's token is refused outside its window or limits, admitted inside them
 * carrying the grant (the assertion says so); every such request is audited as a warning.
 */
export function createBreakGlass(config: Config, now: () => number): BreakGlassCheck {
  const judge = createBreakGlassJudge(config);
  const idle = config.breakGlass.length === 0 && config.issuers.every((i) => i.breakGlassOnly !== true && (i.breakGlassClients?.size ?? 0) === 0);
  return function checkBreakGlass(ctx, { upstream }, principal) {
    if (idle) return principal;
    const { grant, reason } = judge(principal, upstream.name, now());
    if (grant !== undefined) ctx.record.breakGlass = { name: grant.name, ticket: grant.ticket };
    if (reason !== undefined) return deny(reason);
    if (grant === undefined) return principal;
    return Object.freeze({ ...principal, breakGlass: { name: grant.name, ticket: grant.ticket, expiresAtMs: grant.expiresAtMs } });
  };
}

function limitProblem(g: BreakGlassGrant, upstream: string, p: Principal): Reason | undefined {
  if (!g.upstreams.has(upstream)) return 'break_glass_not_allowed';
  for (const s of p.scopes) if (!g.scopes.has(s)) return 'break_glass_not_allowed';
  // RFC 7519 §4.1.6 iat is required: without it the token's lifetime cannot be shown to be short.
  const { iat } = p.claims;
  if (typeof iat !== 'number' || p.exp - iat > g.maxTokenLifetimeSeconds) return 'break_glass_lifetime_exceeded';
  for (const [claim, accepted] of Object.entries(g.requireClaims)) {
    if (!claimMeets(p.claims[claim], accepted)) return 'break_glass_claims_missing';
  }
  return undefined;
}

/** A string claim (acr) must be one of the accepted values; an array claim (amr, RFC 8176) must contain one. */
function claimMeets(value: unknown, accepted: readonly string[]): boolean {
  if (typeof value === 'string') return accepted.includes(value);
  if (Array.isArray(value)) return value.some((v) => typeof v === 'string' && accepted.includes(v));
  return false;
}
