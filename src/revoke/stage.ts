import type { Principal } from '../auth/principal.ts';
import { deny, type Reason } from '../reasons.ts';
import type { Step } from '../stage.ts';
import type { RequestContext } from '../observe/context.ts';

/** What the stage needs of the revocation state (Revocations in service.ts). */
export interface RevocationView {
  check(principal: Principal): Reason | undefined;
}

export type RevocationCheck = (ctx: RequestContext, principal: Principal) => Step<Principal>;

/**
 * The revocation stage, right after authentication so a token from the verified-token cache is judged
 * too: a revoked jti, subject or client is refused with token_revoked; a failClosed issuer whose
 * revocation stream is stale with revocation_stale.
 */
export function createRevocationCheck(view: RevocationView): RevocationCheck {
  return function checkRevocation(_ctx, principal) {
    const reason = view.check(principal);
    return reason === undefined ? principal : deny(reason);
  };
}
