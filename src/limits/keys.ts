import { createHash } from 'node:crypto';
import type { Principal } from '../auth/principal.ts';

/**
 * The bucket key for a caller: a SHA-256 of the issuer and the identity (or of the issuer and the
 * claim's value), so neither subjects nor tenants are kept in memory or in Redis in the clear, and
 * issuer A's tokens can never spend issuer B's quota. A claim that is missing or not a scalar keys one
 * bucket per issuer shared by every such caller: the limit stays in force, never unlimited.
 */
export function limitKey(principal: Principal, claim: string | undefined): string {
  // A Principal is immutable and the token cache hands out the same object for a token seen again, so
  // its keys are hashed once per token rather than once per call.
  let keys = KEYS.get(principal);
  if (keys === undefined) KEYS.set(principal, (keys = new Map()));
  const name = claim ?? '';
  let key = keys.get(name);
  if (key === undefined) keys.set(name, (key = hashKey(principal, claim)));
  return key;
}

const KEYS = new WeakMap<Principal, Map<string, string>>();

function hashKey(principal: Principal, claim: string | undefined): string {
  let parts: readonly unknown[];
  if (claim === undefined) parts = ['id', principal.iss, principal.sub, principal.clientId ?? null];
  else {
    const value = principal.claims[claim];
    const scalar = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : null;
    parts = ['claim', principal.iss, claim, scalar];
  }
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url');
}
