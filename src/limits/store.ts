import { divided } from './bucket.ts';
import { LocalBuckets, type Charge, type Outcome } from './local.ts';
import { SharedBuckets } from './shared.ts';
import { processShare } from '../workers/share.ts';

export interface LimitStoreConfig {
  /** Local buckets kept at most (per store; the fallback store has its own). */
  readonly maxEntries: number;
  readonly redis: {
    readonly url: string;
    readonly keyPrefix: string;
    readonly timeoutMs: number;
    /** The fallback divides every limit by this: N replicas each allow 1/N while the store is away. */
    readonly replicas: number;
  } | undefined;
}

export interface LimitStoreStatus {
  readonly store: 'local' | 'redis';
  /** shared: Redis judges; fallback: Redis is unreachable and each replica judges 1/replicas locally. */
  readonly mode: 'local' | 'shared' | 'fallback';
  readonly replicas?: number;
}

export interface LimitStore {
  /** What the store was built from: an equal config on reload keeps the store (and its buckets). */
  readonly signature: string;
  check(charges: readonly Charge[], now: number): Outcome | Promise<Outcome>;
  status(): LimitStoreStatus;
  close(): Promise<void>;
}

export interface LimitStoreEvents {
  /** The shared store became unreachable (true) or answers again (false). */
  readonly onFallback: (active: boolean) => void;
  /** One call judged by the local fallback. */
  readonly onFallbackCheck: () => void;
}

const RETRY_AFTER_FAILURE_MS = 1_000;

export function createLimitStore(config: LimitStoreConfig, events: LimitStoreEvents): LimitStore {
  const signature = JSON.stringify(config);
  const local = new LocalBuckets(config.maxEntries);
  const redis = config.redis;
  // `serve --workers N`: each worker's buckets are its own, so each allows 1/N of every limit.
  const workers = processShare();
  if (redis === undefined) {
    const status: LimitStoreStatus = Object.freeze({ store: 'local', mode: 'local' });
    const check = workers === 1 ? (charges: readonly Charge[], now: number): Outcome => local.check(charges, now) : (charges: readonly Charge[], now: number): Outcome => local.check(charges.map((c) => ({ ...c, params: divided(c.params, workers) })), now);
    return { signature, check, status: () => status, close: async () => undefined };
  }
  let fallback = true; // until the first connection is ready
  // After a failed check (a hung store answers nothing until timeoutMs), Redis is not asked again for
  // a second: at most one call per second per replica pays the timeout while the store hangs.
  let retryAt = -Infinity;
  const setFallback = (active: boolean): void => {
    if (active === fallback) return;
    fallback = active;
    events.onFallback(active);
  };
  events.onFallback(true);
  const shared = new SharedBuckets(redis, (up) => setFallback(!up));
  // Never unlimited: while Redis is unreachable, each replica enforces its share of every limit.
  const degraded = (charges: readonly Charge[], now: number): Outcome => {
    events.onFallbackCheck();
    return local.check(charges.map((c) => ({ ...c, params: divided(c.params, redis.replicas * workers) })), now);
  };
  return {
    signature,
    check(charges, now) {
      if (!shared.ready || now < retryAt) {
        setFallback(true);
        return degraded(charges, now);
      }
      return shared.check(charges, now).then((outcome) => {
        setFallback(false);
        return outcome;
      }, () => {
        retryAt = now + RETRY_AFTER_FAILURE_MS;
        setFallback(true);
        return degraded(charges, now);
      });
    },
    status: () => ({ store: 'redis', mode: fallback ? 'fallback' : 'shared', replicas: redis.replicas }),
    close: () => shared.close(),
  };
}
