import { describe, expect, it } from 'vitest';
import { divided, judge, retryAfterSeconds, type BucketParams, type LimitState, type WindowParams } from '../../src/limits/bucket.ts';
import { LocalBuckets, type Charge } from '../../src/limits/local.ts';

// Bucket math with an injected clock (STYLE rule 11): every `now` below is chosen by the test.

const bucket = (rate: number, perSeconds: number, burst: number): BucketParams => ({ kind: 'bucket', burst, refillPerMs: rate / (perSeconds * 1000) });
const window = (limit: number, seconds: number): WindowParams => ({ kind: 'window', limit, windowMs: seconds * 1000 });
const T0 = 1_800_000_000_000; // an hour boundary (divisible by 3,600,000)

/** Spends `cost` at each time in `times`, keeping state as a caller that commits allowed verdicts would. */
function run(params: BucketParams | WindowParams, calls: readonly [number, number][]): boolean[] {
  let state: LimitState | undefined;
  return calls.map(([now, cost]) => {
    const v = judge(params, state, cost, now);
    if (v.allowed) state = v.next;
    return v.allowed;
  });
}

describe('token bucket', () => {
  it('a fresh bucket allows the burst at once, then refuses with the wait for one token', () => {
    const p = bucket(2, 1, 3); // 2 per second, burst 3
    expect(run(p, [[T0, 1], [T0, 1], [T0, 1], [T0, 1]])).toEqual([true, true, true, false]);
    let state: LimitState | undefined;
    for (let i = 0; i < 3; i++) state = judge(p, state, 1, T0).next;
    const refused = judge(p, state, 1, T0 + 100);
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterMs).toBe(400); // 0.2 tokens refilled in 100 ms, 0.8 missing at 2/s
    expect(retryAfterSeconds(refused.retryAfterMs)).toBe(1);
    expect(judge(p, state, 1, T0 + 500).allowed).toBe(true);
  });

  it('refills at the configured rate and never above the burst', () => {
    const p = bucket(5, 60, 5); // 5 per minute
    const calls: [number, number][] = [[T0, 5], [T0 + 11_999, 1], [T0 + 12_000, 1], [T0 + 12_000 + 3_600_000, 5], [T0 + 12_000 + 3_600_000, 1]];
    expect(run(p, calls)).toEqual([true, false, true, true, false]);
  });

  it('a cost above the burst is refused however long the caller waited', () => {
    const p = bucket(10, 1, 4);
    const v = judge(p, undefined, 5, T0);
    expect(v.allowed).toBe(false);
    expect(judge(p, { value: 4, at: T0 }, 5, T0 + 86_400_000).allowed).toBe(false);
  });

  it('a clock that steps back refills nothing', () => {
    const p = bucket(1, 1, 1);
    const spent = judge(p, undefined, 1, T0).next;
    expect(judge(p, spent, 1, T0 - 60_000).allowed).toBe(false);
  });

  it('marks a bucket idle when it would be full again', () => {
    const p = bucket(1, 1, 10);
    expect(judge(p, undefined, 4, T0).idleAt).toBe(T0 + 4_000);
  });
});

describe('fixed window quota', () => {
  it('allows the quota within one window and tells the wait until the next window', () => {
    const p = window(20, 3600); // delete_*: 20 per hour
    let state: LimitState | undefined;
    for (let i = 0; i < 20; i++) {
      const v = judge(p, state, 1, T0 + 1_000 + i);
      expect(v.allowed).toBe(true);
      state = v.next;
    }
    const refused = judge(p, state, 1, T0 + 600_000);
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterMs).toBe(3_000_000);
    expect(retryAfterSeconds(refused.retryAfterMs)).toBe(3000);
    expect(judge(p, state, 1, T0 + 3_600_000).allowed).toBe(true); // next window
  });

  it('a batch costs one unit per message: 3 fit in a quota of 4 and then 2 do not', () => {
    expect(run(window(4, 60), [[T0, 3], [T0 + 1, 2], [T0 + 2, 1]])).toEqual([true, false, true]);
  });
});

describe('Retry-After and the fallback share', () => {
  it('rounds every wait up to whole seconds, at least 1', () => {
    expect([1, 999, 1000, 1001, 59_999].map(retryAfterSeconds)).toEqual([1, 1, 1, 2, 60]);
  });

  it('divides a limit by the replica count, never below one unit', () => {
    expect(divided(bucket(10, 1, 30), 3)).toEqual({ kind: 'bucket', burst: 10, refillPerMs: 10 / 3 / 1000 });
    expect(divided(window(20, 3600), 3)).toEqual({ kind: 'window', limit: 6, windowMs: 3_600_000 });
    expect(divided(window(2, 60), 5)).toEqual({ kind: 'window', limit: 1, windowMs: 60_000 });
    expect(divided(window(2, 60), 1)).toEqual(window(2, 60));
  });
});

describe('local buckets', () => {
  const charge = (key: string, params: BucketParams | WindowParams, cost = 1): Charge => ({ key, params, cost });

  it('spends nothing when any one limit refuses, and names the strictest (longest wait)', () => {
    const store = new LocalBuckets(1_000);
    const loose = bucket(100, 1, 100);
    const quota = window(1, 3600);
    const tight = bucket(1, 10, 1);
    expect(store.check([charge('loose', loose), charge('quota', quota), charge('tight', tight)], T0).allowed).toBe(true);
    const refused = store.check([charge('loose', loose, 50), charge('quota', quota), charge('tight', tight)], T0 + 1);
    expect(refused).toEqual({ allowed: false, index: 1, retryAfterMs: 3_600_000 - 1 });
    // The refused call did not spend the loose bucket: 99 tokens remain (it spent one, at T0).
    expect(store.check([charge('loose', loose, 99)], T0 + 1).allowed).toBe(true);
  });

  it('stays bounded: idle keys are dropped, and past maxEntries the least recently used go', () => {
    const store = new LocalBuckets(1_000);
    const p = bucket(1, 1, 1);
    for (let i = 0; i < 5_000; i++) store.check([charge(`caller-${i}`, p)], T0 + i * 10);
    expect(store.size).toBeLessThanOrEqual(1_000);
    // Long after, every bucket is full again: a stream of new callers sweeps the idle ones away.
    const later = T0 + 10_000_000;
    for (let i = 0; i < 400; i++) store.check([charge(`late-${i}`, p)], later);
    expect(store.size).toBeLessThan(1_000);
    // A recently used caller is still held (refused), not forgotten into a fresh bucket.
    expect(store.check([charge('late-399', p)], later).allowed).toBe(false);
  });
});
