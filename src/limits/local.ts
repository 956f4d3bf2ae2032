import { evictOldest } from '../lib/evict.ts';
import { judge, type LimitParams, type LimitState, type Verdict } from './bucket.ts';

/** One limit to charge for this call: its store key, its parameters and how many units the call costs. */
export interface Charge {
  readonly key: string;
  readonly params: LimitParams;
  readonly cost: number;
}

/** Allowed, or refused by charges[index] (the longest wait: the strictest limit wins). */
export type Outcome = { readonly allowed: true } | { readonly allowed: false; readonly index: number; readonly retryAfterMs: number };

export const ALLOWED: Outcome = Object.freeze({ allowed: true });

interface Entry {
  state: LimitState;
  idleAt: number;
}

// A full pass for idle keys at most this often (clock ms) besides when the map is full: O(entries)
// once a minute, never per request.
const SWEEP_EVERY_MS = 60_000;

/**
 * Buckets in this process's memory, bounded. An idle key (its bucket full again, its window over)
 * carries nothing and is dropped by a sweep, once a minute or when the map is full; if it is still
 * full, the oldest keys go (evictOldest), which hands those callers a fresh bucket: size maxEntries
 * above the callers active in one window. Entries are updated in place, so the Map's order is the
 * order keys were created and no per-request delete leaves holes to walk.
 */
export class LocalBuckets {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  #sweptAt = -Infinity;

  constructor(maxEntries: number) {
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Every charge is judged first; only when all pass is any of them spent (a refused call costs nothing). */
  check(charges: readonly Charge[], now: number): Outcome {
    const verdicts: Verdict[] = [];
    let refused: { index: number; retryAfterMs: number } | undefined;
    charges.forEach((c, index) => {
      const v = judge(c.params, this.#entries.get(c.key)?.state, c.cost, now);
      verdicts.push(v);
      if (!v.allowed && (refused === undefined || v.retryAfterMs > refused.retryAfterMs)) refused = { index, retryAfterMs: v.retryAfterMs };
    });
    if (refused !== undefined) return { allowed: false, ...refused };
    charges.forEach((c, i) => this.#commit(c.key, verdicts[i] as Verdict, now));
    return ALLOWED;
  }

  #commit(key: string, v: Verdict, now: number): void {
    const entry = this.#entries.get(key);
    if (entry !== undefined) {
      entry.state = v.next;
      entry.idleAt = v.idleAt;
      return;
    }
    if (this.#entries.size >= this.#maxEntries || now - this.#sweptAt >= SWEEP_EVERY_MS) this.#sweep(now);
    evictOldest(this.#entries, this.#maxEntries, 1);
    this.#entries.set(key, { state: v.next, idleAt: v.idleAt });
  }

  #sweep(now: number): void {
    this.#sweptAt = now;
    for (const [key, entry] of this.#entries) if (entry.idleAt <= now) this.#entries.delete(key);
  }
}
