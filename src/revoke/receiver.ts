import type { IssuerKeys } from '../auth/keys.ts';
import { evictOldest } from '../lib/evict.ts';
import type { TransmitterConfig } from '../config/compile.ts';
import type { Revocation } from './entries.ts';
import { mapSet, type Mapped } from './events.ts';
import { verifySet, type RefusedSet, type RetrySet } from './set.ts';

/** What became of one delivered SET: the same answer for push (HTTP status) and poll (ack or setErr). */
export type Receipt =
  | { readonly kind: 'accepted'; readonly jti: string; readonly mapped: Mapped }
  | { readonly kind: 'replayed'; readonly jti: string }
  | RefusedSet
  | RetrySet;

/**
 * SET jti values already applied, per issuer, bounded (oldest forgotten first). Forgetting is safe: an
 * entry only ever grows (store.ts), so applying an old SET again changes nothing.
 */
export class SeenSets {
  readonly #max: number;
  readonly #seen = new Map<string, true>();
  constructor(max: number) {
    this.#max = max;
  }
  has(iss: string, jti: string): boolean {
    return this.#seen.has(`${iss}\u0000${jti}`);
  }
  add(iss: string, jti: string): void {
    evictOldest(this.#seen, this.#max, 1);
    this.#seen.set(`${iss}\u0000${jti}`, true);
  }
}

export interface ReceiverDeps {
  readonly keys: (issuerName: string) => IssuerKeys | undefined;
  readonly audience: () => string;
  readonly seen: SeenSets;
  readonly apply: (t: TransmitterConfig, jti: string, revocations: readonly Revocation[]) => void;
  readonly now: () => number;
}

/** One SET from transmitter `t`, by either delivery: verified, deduplicated by jti (RFC 8417 §2.2), mapped, applied. */
export async function receiveSet(token: string, t: TransmitterConfig, deps: ReceiverDeps): Promise<Receipt> {
  const keys = deps.keys(t.issuer.name);
  if (keys === undefined) return { kind: 'retry' };
  const set = await verifySet(token, t, keys, deps.audience(), deps.now());
  if (set.kind !== 'set') return set;
  if (deps.seen.has(t.issuer.issuer, set.jti)) return { kind: 'replayed', jti: set.jti };
  const mapped = mapSet(set, t.issuer);
  deps.seen.add(t.issuer.issuer, set.jti);
  deps.apply(t, set.jti, mapped.revocations);
  if (mapped.refused.length > 0) return { kind: 'refused', err: 'invalid_request', description: `cannot map: ${mapped.refused.join('; ')}`.slice(0, 512) };
  return { kind: 'accepted', jti: set.jti, mapped };
}
