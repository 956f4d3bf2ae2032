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
  readonly state: LimitState;
  readonly idleAt: number;
}

// Entries looked at for idleness per committed call: amortised O(1), and a steady flow of new callers
// drains the idle ones faster than it adds.
const SWEEP = 4;

/**
 * Buckets in this process's memory, bounded: the Map is ordered by last use, so the front holds the
 * least recently used keys. An idle key (its bucket full again, its window over) carries nothing and
 * is dropped; past `maxEntries` the least recently used go first, even if not idle.
 */
export class LocalBuckets {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;

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
    this.#sweep(now);
    evictOldest(this.#entries, this.#maxEntries, charges.length);
    charges.forEach((c, i) => {
      const v = verdicts[i] as Verdict;
      this.#entries.delete(c.key); // re-inserted at the end: most recently used
      this.#entries.set(c.key, { state: v.next, idleAt: v.idleAt });
    });
    return ALLOWED;
  }

  #sweep(now: number): void {
    let looked = 0;
    for (const [key, entry] of this.#entries) {
      if (looked++ >= SWEEP) break;
      if (entry.idleAt <= now) this.#entries.delete(key);
    }
  }
}
