// The signing-key rotation schedule as pure functions of the records and the time, so that
// publication, activation and retirement need no timers and a restart resumes where it was.
import type { PrivateJwk } from 'oidc-provider';

export interface KeyRecord {
  readonly jwk: PrivateJwk;
  /** From this instant (ms) the key may sign; it is published from the moment it exists. */
  readonly activeAtMs: number;
  /** From this instant (ms) the key is neither published nor used; unset while it is the newest. */
  readonly retireAtMs?: number;
}

/** Keys still published at `nowMs`. */
export function retainedKeys(records: readonly KeyRecord[], nowMs: number): readonly KeyRecord[] {
  return records.filter((r) => r.retireAtMs === undefined || nowMs < r.retireAtMs);
}

/** The key that signs at `nowMs`: the most recently activated one, or undefined before any. */
export function signingKey(records: readonly KeyRecord[], nowMs: number): KeyRecord | undefined {
  let chosen: KeyRecord | undefined;
  for (const record of records) {
    if (record.activeAtMs <= nowMs && (chosen === undefined || record.activeAtMs >= chosen.activeAtMs)) {
      chosen = record;
    }
  }
  return chosen;
}

/**
 * Adds `next`. Every key that had no retirement date retires once the longest token it could
 * still sign (issued just before `next` activates) has expired.
 */
export function withRotation(records: readonly KeyRecord[], next: KeyRecord, maxTokenLifetimeMs: number): readonly KeyRecord[] {
  const retireAtMs = next.activeAtMs + maxTokenLifetimeMs;
  return [...records.map((r) => (r.retireAtMs === undefined ? { ...r, retireAtMs } : r)), next];
}
