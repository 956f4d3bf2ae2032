// One use per assertion (RFC 7523 §3 item 7 lets the server refuse a replayed jti): remembered until
// the assertion expires. Bounded: when full of unexpired entries, new assertions are refused rather
// than old ones forgotten, because forgetting would make a replay succeed (fail closed).

export class ReplayCache {
  readonly #seen = new Map<string, number>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(max: number, now: () => number = Date.now) {
    this.#max = max;
    this.#now = now;
  }

  /** Records iss+jti until expiresAtMs; false when it was already used, or the cache cannot take it. */
  use(issuer: string, jti: string, expiresAtMs: number): 'fresh' | 'replayed' | 'full' {
    const key = `${issuer}\u0000${jti}`;
    const now = this.#now();
    const known = this.#seen.get(key);
    if (known !== undefined && known > now) return 'replayed';
    if (this.#seen.size >= this.#max) this.#sweep(now);
    if (this.#seen.size >= this.#max) return 'full';
    this.#seen.set(key, expiresAtMs);
    return 'fresh';
  }

  #sweep(now: number): void {
    for (const [key, expiresAt] of this.#seen) if (expiresAt <= now) this.#seen.delete(key);
  }
}
