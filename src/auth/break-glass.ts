import type { BreakGlassGrant, Config } from '../config/compile.ts';
import type { RequestContext } from '../observe/context.ts';
import { deny, type Reason } from '../reasons.ts';
import type { Admitted } from '../route/admission.ts';
import type { Step } from '../stage.ts';
import type { Principal } from './principal.ts';

export type BreakGlassCheck = (ctx: RequestContext, admitted: Admitted, principal: Principal) => Step<Principal>;

/**
 * The break-glass stage (README "Break-glass access"): a token whose issuer and/or client a grant names
 * has passed every normal check already; it is then admitted only inside the grant's window, read from
 * the clock on every request (no reload retires a grant: its expiresAt does), and only within the
 * grant's upstreams, scopes, token lifetime and required claims. Admitted principals carry the grant, so
 * the assertion says so; every such request, admitted or refused, is audited as a warning.
 */
export function createBreakGlass(config: Config, now: () => number): BreakGlassCheck {
  const grants = config.breakGlass;
  return function checkBreakGlass(ctx, { upstream }, principal) {
    if (grants.length === 0) return principal;
    const matching = grants.filter((g) => names(g, principal));
    if (matching.length === 0) return principal;
    const nowMs = now();
    // [activatedAt, expiresAt): at expiresAt the grant is already closed (fail closed at the edge).
    const grant = matching.find((g) => g.activatedAtMs <= nowMs && nowMs < g.expiresAtMs);
    const judged = grant ?? (matching[0] as BreakGlassGrant);
    ctx.record.breakGlass = { name: judged.name, ticket: judged.ticket };
    if (grant === undefined) return deny(matching.some((g) => nowMs < g.activatedAtMs) ? 'break_glass_inactive' : 'break_glass_expired');
    const problem = limitProblem(grant, upstream.name, principal);
    if (problem !== undefined) return deny(problem);
    return Object.freeze({ ...principal, breakGlass: { name: grant.name, ticket: grant.ticket, expiresAtMs: grant.expiresAtMs } });
  };
}

/** A grant judges the tokens of its issuer and/or client; naming both, it judges only that client there. */
function names(g: BreakGlassGrant, p: Principal): boolean {
  if (g.issuer !== undefined && g.issuer !== p.issuerName) return false;
  if (g.clientId !== undefined && g.clientId !== p.clientId) return false;
  return true;
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
