// The arithmetic of one limit, pure and clock-free: callers pass `now` (STYLE rule 11), so tests drive
// time by hand and the Redis script (shared.ts) can mirror the same steps exactly.

/** Token bucket: `burst` tokens at most, refilled continuously at `refillPerMs`. */
export interface BucketParams {
  readonly kind: 'bucket';
  readonly burst: number;
  readonly refillPerMs: number;
}

/**
 * Fixed window quota: at most `limit` units per window, windows aligned to the epoch (so every replica
 * and the shared store agree on where a window starts, from the time alone).
 */
export interface WindowParams {
  readonly kind: 'window';
  readonly limit: number;
  readonly windowMs: number;
}

export type LimitParams = BucketParams | WindowParams;

/** What is remembered per key: tokens left at `at` (bucket), or units spent in the window starting at `at`. */
export interface LimitState {
  readonly value: number;
  readonly at: number;
}

export interface Verdict {
  readonly allowed: boolean;
  /** The state to keep when the call goes ahead (unchanged state when refused). */
  readonly next: LimitState;
  /** Refused: milliseconds until the same cost could pass (0 when allowed). */
  readonly retryAfterMs: number;
  /** When the key holds nothing worth keeping: the bucket is full again, or the window is over. */
  readonly idleAt: number;
}

/** Judges `cost` units against one limit at `now`; the caller commits `next` only when every limit allowed. */
export function judge(params: LimitParams, state: LimitState | undefined, cost: number, now: number): Verdict {
  return params.kind === 'bucket' ? judgeBucket(params, state, cost, now) : judgeWindow(params, state, cost, now);
}

function judgeBucket(p: BucketParams, state: LimitState | undefined, cost: number, now: number): Verdict {
  // A clock that stepped back refills nothing rather than going negative.
  const elapsed = state === undefined ? 0 : Math.max(0, now - state.at);
  const tokens = state === undefined ? p.burst : Math.min(p.burst, state.value + elapsed * p.refillPerMs);
  if (tokens >= cost) {
    const left = tokens - cost;
    return { allowed: true, next: { value: left, at: now }, retryAfterMs: 0, idleAt: now + Math.ceil((p.burst - left) / p.refillPerMs) };
  }
  // A cost above the burst never fits (lint warns when a full batch cannot): the wait is a full refill.
  const missing = Math.min(cost, p.burst) - tokens;
  const held = { value: tokens, at: now };
  return { allowed: false, next: held, retryAfterMs: Math.max(1, Math.ceil(missing / p.refillPerMs)), idleAt: now + Math.ceil((p.burst - tokens) / p.refillPerMs) };
}

function judgeWindow(p: WindowParams, state: LimitState | undefined, cost: number, now: number): Verdict {
  const start = Math.floor(now / p.windowMs) * p.windowMs;
  const end = start + p.windowMs;
  const spent = state !== undefined && state.at === start ? state.value : 0;
  if (spent + cost <= p.limit) return { allowed: true, next: { value: spent + cost, at: start }, retryAfterMs: 0, idleAt: end };
  return { allowed: false, next: { value: spent, at: start }, retryAfterMs: Math.max(1, end - now), idleAt: end };
}

/** RFC 9110 §10.2.3: Retry-After in whole seconds, rounded up so a client that obeys it is not refused again. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** The local share of a limit while the shared store is unreachable: each of `replicas` gets 1/replicas. */
export function divided(params: LimitParams, replicas: number): LimitParams {
  if (replicas <= 1) return params;
  // Never below one unit: a limit stays finite (and a caller is never starved to zero) on every replica.
  if (params.kind === 'bucket') return { kind: 'bucket', burst: Math.max(1, Math.floor(params.burst / replicas)), refillPerMs: params.refillPerMs / replicas };
  return { kind: 'window', limit: Math.max(1, Math.floor(params.limit / replicas)), windowMs: params.windowMs };
}
