import type { Config } from '../config/compile.ts';
import type { ConfigProblem } from '../config/errors.ts';

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

/** What `serve --workers N` (N > 1) cannot serve as configured; checked in the primary before any fork. */
export function workerProblems(file: string, config: Config, workers: number): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const at = (key: string, message: string): number => problems.push({ file, line: undefined, key, message });
  config.revocation.transmitters.forEach((t, i) => void (t.push === undefined || at(`revocation.transmitters.${i}.push`, PUSH_UNDER_WORKERS)));
  // With a shared store the limits are judged once, in Redis (its fallback is documented as approximate).
  if (config.rateLimitStore.redis !== undefined) return problems;
  config.upstreams.forEach((u, i) => u.rateLimits.forEach((r, j) => {
    const problem = limitTooSmall(r.params.kind === 'bucket' ? r.params.burst : r.params.limit, workers);
    if (problem !== undefined) at(`upstreams.${i}.rateLimits.${j}`, problem);
  }));
  return problems;
}
