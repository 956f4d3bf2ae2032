/**
 * RFC 9449 §11.1: the jti of every accepted proof, remembered until the proof's iat leaves the acceptance
 * window. Bounded in memory and per process: several replicas do not share it (README "Sender-constrained
 * tokens"). When full of live entries it refuses new proofs rather than forget one that could be replayed.
 */
export class DpopReplayCache {
  readonly #max: number;
  /** key → expiry (ms), in insertion order; expiries grow nearly monotonically, so the front expires first. */
  readonly #seen = new Map<string, number>();

  /** `previous`: the cache of the configuration being replaced, whose live entries are kept (even beyond a smaller bound). */
  constructor(maxEntries: number, previous?: DpopReplayCache) {
    this.#max = maxEntries;
    if (previous !== undefined) for (const [key, expiry] of previous.#seen) this.#seen.set(key, expiry);
  }

  /** Records a proof: 'fresh' the first time, 'replayed' when seen and still live, 'full' when no room. */
  record(key: string, expiresAtMs: number, nowMs: number): 'fresh' | 'replayed' | 'full' {
    const known = this.#seen.get(key);
    if (known !== undefined && known > nowMs) return 'replayed';
    if (known !== undefined) this.#seen.delete(key);
    this.#sweep(nowMs);
    if (this.#seen.size >= this.#max) return 'full';
    this.#seen.set(key, expiresAtMs);
    return 'fresh';
  }

  // Drops expired entries from the front and stops at the first live one: O(1) amortised per proof.
  #sweep(nowMs: number): void {
    for (const [key, expiry] of this.#seen) {
      if (expiry > nowMs) return;
      this.#seen.delete(key);
    }
  }
}
