import type { Config } from '../config/compile.ts';
import type { ConfigProblem } from '../config/errors.ts';
import { limitTooSmall, PUSH_UNDER_WORKERS } from '../config/lint-workers.ts';

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
