import type { RawConfig } from './schema.ts';
import { limitTooSmall, PUSH_UNDER_WORKERS } from '../workers/unsupported.ts';

type Report = (path: readonly (string | number)[], message: string) => void;

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
