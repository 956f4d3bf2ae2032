import type { Principal } from '../auth/principal.ts';
import { clientKey, grantKey, jtiKey, revocationKey, subjectKey, type Revocation } from './entries.ts';

/** The result of adding a revocation: kept, already covered by a stronger one, past its bound, or no room. */
export type Added = 'added' | 'covered' | 'expired' | 'overflow';

/**
 * Revocation entries of this replica, looked up on every request (three Map gets). Entries leave when
 * their bound passes (expiryOf): memory follows the tokens still alive, never the history. The cap is
 * enforced fail closed: an entry that finds no room is not dropped silently, its issuer's tokens are
 * all refused (revocation_stale) until that entry's own bound has passed.
 */
export class RevocationStore {
  readonly #max: number;
  readonly #entries = new Map<string, Revocation>();
  /** iss → until when every token of it is refused, because a revocation found the store full. */
  readonly #overflow = new Map<string, number>();
  #nextSweepMs = 0;

  constructor(maxEntries: number) {
    this.#max = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  add(r: Revocation, nowMs: number): Added {
    if (r.expiresAtMs <= nowMs) return 'expired';
    const key = revocationKey(r);
    const old = this.#entries.get(key);
    const merged = old === undefined ? r : strongest(old, r);
    if (merged === old) return 'covered';
    if (old === undefined && this.#entries.size >= this.#max) {
      this.sweep(nowMs);
      if (this.#entries.size >= this.#max) {
        this.#overflow.set(r.iss, Math.max(this.#overflow.get(r.iss) ?? 0, r.expiresAtMs));
        return 'overflow';
      }
    }
    this.#entries.set(key, merged);
    return 'added';
  }

  /** 'revoked' when an entry covers this token, 'overflow' when its issuer lost one to the cap. */
  check(p: Principal, nowMs: number): 'revoked' | 'overflow' | undefined {
    if (this.#entries.size === 0 && this.#overflow.size === 0) return undefined;
    if (nowMs >= this.#nextSweepMs) this.sweep(nowMs);
    const overflowUntil = this.#overflow.get(p.iss);
    if (overflowUntil !== undefined && overflowUntil > nowMs) return 'overflow';
    const iat = typeof p.claims.iat === 'number' ? p.claims.iat : undefined;
    const j = jtiKey(p);
    if (j !== undefined && this.#live(j, nowMs) !== undefined) return 'revoked';
    if (coversIat(this.#live(subjectKey(p), nowMs), iat)) return 'revoked';
    const c = clientKey(p);
    if (c !== undefined && coversIat(this.#live(c, nowMs), iat)) return 'revoked';
    const g = grantKey(p);
    if (g !== undefined && coversIat(this.#live(g, nowMs), iat)) return 'revoked';
    return undefined;
  }

  /** Drops every entry (and overflow mark) past its bound; runs at most once a second from check. */
  sweep(nowMs: number): void {
    this.#nextSweepMs = nowMs + 1_000;
    for (const [key, r] of this.#entries) if (r.expiresAtMs <= nowMs) this.#entries.delete(key);
    for (const [iss, until] of this.#overflow) if (until <= nowMs) this.#overflow.delete(iss);
  }

  /** Issuers whose tokens are refused because the store was full (for /readyz). */
  overflowing(nowMs: number): readonly string[] {
    return [...this.#overflow].filter(([, until]) => until > nowMs).map(([iss]) => iss);
  }

  #live(key: string, nowMs: number): Revocation | undefined {
    const r = this.#entries.get(key);
    if (r === undefined) return undefined;
    if (r.expiresAtMs > nowMs) return r;
    this.#entries.delete(key);
    return undefined;
  }
}

function coversIat(r: Revocation | undefined, iat: number | undefined): boolean {
  if (r === undefined || r.kind === 'jti') return r !== undefined;
  // RFC 7519 §4.1.6: iat is when the token was issued; one issued in the revocation's second is cut too.
  return iat === undefined || iat <= r.issuedBeforeS;
}

/** Two revocations of one key: the later cut-off and the later bound win (an entry only grows). */
function strongest(a: Revocation, b: Revocation): Revocation {
  if (a.kind === 'jti' || b.kind === 'jti') return b.expiresAtMs > a.expiresAtMs ? b : a;
  const issuedBeforeS = Math.max(a.issuedBeforeS, (b as typeof a).issuedBeforeS);
  const expiresAtMs = Math.max(a.expiresAtMs, b.expiresAtMs);
  if (issuedBeforeS === a.issuedBeforeS && expiresAtMs === a.expiresAtMs) return a;
  return { ...a, issuedBeforeS, expiresAtMs } as Revocation;
}
