import type { RawConfig } from './schema.ts';

type Report = (path: readonly (string | number)[], message: string) => void;

/**
 * RFC 8935 push delivery lands on the admin listener, which under `serve --workers` is the primary's: it
 * holds no revocation state and answers /ssf/push with 404, so a pushed revocation would reach no worker
 * and every worker would keep accepting the revoked token. Refused until push is relayed to workers; poll
 * delivery works (each worker polls as its own receiver).
 */
export const PUSH_UNDER_WORKERS = 'push delivery is not supported with more than one worker (the admin listener is the primary\'s and holds no revocation state); use poll delivery, or workers: 1';

/**
 * Local limits are divided per worker but never below one unit each (limits/bucket.ts `divided`): a
 * burst or quota smaller than the worker count would let N workers together allow N, more than the limit.
 */
export function limitTooSmall(units: number, workers: number): string | undefined {
  if (units >= workers) return undefined;
  return `allows ${units} but each of ${workers} workers keeps its own share of at least 1 (${workers} in all): use rateLimitStore.redis, fewer workers, or a limit of at least ${workers}`;
}

/**
 * What `workers:` other than 1 cannot serve. `auto` is judged by push alone here (its count is the
 * machine's); `serve --workers` checks everything again with the real count (workers/primary.ts).
 */
export function lintWorkers(raw: RawConfig, err: Report): void {
  if (raw.workers === 1) return;
  raw.revocation.transmitters.forEach((t, i) => {
    if (t.push !== undefined) err(['revocation', 'transmitters', i, 'push'], PUSH_UNDER_WORKERS);
  });
  const workers = raw.workers;
  if (workers === 'auto' || raw.rateLimitStore.redis !== undefined) return;
  raw.upstreams.forEach((u, i) => u.rateLimits.forEach((l, j) => {
    const problem = limitTooSmall(l.rate !== undefined ? (l.burst ?? l.rate) : (l.quota ?? 0), workers);
    if (problem !== undefined) err(['upstreams', i, 'rateLimits', j], problem);
  }));
}
