import type { IssuerConfig } from '../config/compile.ts';
import { expiryOf, type Revocation } from './entries.ts';
import type { VerifiedSet } from './set.ts';

// Event types (OpenID CAEP 1.0 §3, RISC 1.0 §2) and how each maps to revocation entries (README
// "Revocation"). Every one cuts the tokens of its subject issued at or before a time T; a subject that
// names one token (jwt_id) cuts that token.
export const CAEP_SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
export const CAEP_CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change';
export const CAEP_TOKEN_CLAIMS_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/token-claims-change';
export const RISC_ACCOUNT_DISABLED = 'https://schemas.openid.net/secevent/risc/event-type/account-disabled';
/** SSF 1.0 stream verification and stream-updated events: understood, nothing to revoke. */
const SSF_NO_OP = new Set([
  'https://schemas.openid.net/secevent/ssf/event-type/verification',
  'https://schemas.openid.net/secevent/ssf/event-type/stream-updated',
]);
const REVOKING = new Set([CAEP_SESSION_REVOKED, CAEP_CREDENTIAL_CHANGE, CAEP_TOKEN_CLAIMS_CHANGE, RISC_ACCOUNT_DISABLED]);

export interface Mapped {
  readonly revocations: readonly Revocation[];
  /** Event types this receiver does not act on (RFC 8417 §2.2: ignored, not an error). */
  readonly ignored: readonly string[];
  /** Events it should act on but cannot map safely: the SET is reported back as refused. */
  readonly refused: readonly string[];
}

type Target = { readonly kind: 'subject'; readonly sub: string } | { readonly kind: 'grant'; readonly sub: string; readonly clientId: string } | { readonly kind: 'client'; readonly clientId: string } | { readonly kind: 'jti'; readonly jti: string };

export function mapSet(set: VerifiedSet, issuer: IssuerConfig): Mapped {
  const revocations: Revocation[] = [];
  const ignored: string[] = [];
  const refused: string[] = [];
  for (const [type, event] of Object.entries(set.events)) {
    if (SSF_NO_OP.has(type)) continue;
    if (!REVOKING.has(type)) {
      ignored.push(type);
      continue;
    }
    // CAEP 1.0 events carry `subject` in the event; SSF 1.0 SET profile puts `sub_id` at the top level.
    const target = targetOf(event['subject'] ?? set.payload['sub_id'], issuer.issuer);
    if (typeof target === 'string') {
      refused.push(`${type.slice(type.lastIndexOf('/') + 1)}: ${target}`);
      continue;
    }
    revocations.push(revocationFor(target, cutOff(type, event, set.iat), issuer));
  }
  return { revocations, ignored, refused };
}

/**
 * T for "issued at or before T". CAEP event_timestamp (seconds) says when the session ended or the
 * credential/claims changed; later than the SET itself it cannot be (millisecond values of old drafts
 * land here), so it is capped at the SET's iat. RISC account-disabled cuts everything until the SET.
 */
function cutOff(type: string, event: Readonly<Record<string, unknown>>, setIat: number): number {
  if (type === RISC_ACCOUNT_DISABLED) return setIat;
  const at = event['event_timestamp'];
  return typeof at === 'number' && Number.isFinite(at) && at >= 0 ? Math.min(Math.floor(at), setIat) : setIat;
}

function revocationFor(target: Target, issuedBeforeS: number, issuer: IssuerConfig): Revocation {
  const iss = issuer.issuer;
  // A token alive now that this event concerns was issued by T, so it is gone by T + its longest life.
  const expiresAtMs = expiryOf(issuedBeforeS, issuer.maxTokenLifetimeSeconds, issuer.clockSkewSeconds);
  switch (target.kind) {
    case 'jti':
      return { kind: 'jti', iss, jti: target.jti, expiresAtMs };
    case 'subject':
      return { kind: 'subject', iss, sub: target.sub, issuedBeforeS, expiresAtMs };
    case 'client':
      return { kind: 'client', iss, clientId: target.clientId, issuedBeforeS, expiresAtMs };
    case 'grant':
      return { kind: 'grant', iss, sub: target.sub, clientId: target.clientId, issuedBeforeS, expiresAtMs };
  }
}

/**
 * RFC 9493 / SSF 1.0 subject identifiers → what a token's claims can be matched on, or why not.
 * - `iss_sub` (the issuer must be this one) → subject; `jwt_id` (SSF 1.0) → one token;
 * - `complex`: `application` (`opaque` id = the client_id) → client; `user` (iss_sub) → subject, or with
 *   an application → that subject through that client (a grant); narrower members (session, device)
 *   are ignored: cutting every token of the subject (or grant) is the safe superset;
 * - `email`, `phone_number`, `opaque` alone, `account`, `did`, `uri`, `aliases`: refused — a token's sub is
 *   not an email, and guessing a mapping could cut the wrong identity or miss the right one.
 */
function targetOf(subject: unknown, iss: string): Target | string {
  if (typeof subject !== 'object' || subject === null) return 'no subject';
  const s = subject as Record<string, unknown>;
  switch (s['format']) {
    case 'iss_sub':
      if (s['iss'] !== iss) return 'iss_sub names another issuer';
      return nonEmpty(s['sub']) ? { kind: 'subject', sub: s['sub'] } : 'iss_sub without sub';
    case 'jwt_id':
      if (s['iss'] !== iss) return 'jwt_id names another issuer';
      return nonEmpty(s['jti']) ? { kind: 'jti', jti: s['jti'] } : 'jwt_id without jti';
    case 'complex':
      return complexTarget(s, iss);
    default:
      return `subject format ${typeof s['format'] === 'string' ? s['format'].slice(0, 32) : '(none)'} cannot be mapped to token claims`;
  }
}

function complexTarget(s: Record<string, unknown>, iss: string): Target | string {
  const app = s['application'] as Record<string, unknown> | undefined;
  let clientId: string | undefined;
  if (app !== undefined) {
    if (typeof app !== 'object' || app === null || app['format'] !== 'opaque' || !nonEmpty(app['id'])) return 'complex application must be opaque (the client_id)';
    clientId = app['id'];
  }
  const user = s['user'];
  if (user === undefined) return clientId === undefined ? 'complex subject without a user (iss_sub) or an application (opaque client_id)' : { kind: 'client', clientId };
  const target = targetOf(user, iss);
  if (typeof target === 'string') return target;
  if (target.kind !== 'subject') return 'complex user must be iss_sub';
  return clientId === undefined ? target : { kind: 'grant', sub: target.sub, clientId };
}

const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 1024;
