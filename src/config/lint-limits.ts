import type { RawConfig } from './schema.ts';
import { isSecureOrLoopback, parseUrl } from './urls.ts';

type Path = readonly (string | number)[];
type Report = (path: Path, message: string) => void;

/** rateLimits and rateLimitStore rules the schema cannot express (README "Rate limits and quotas"). */
export function lintRateLimits(raw: RawConfig, err: Report, warn: Report): void {
  raw.upstreams.forEach((up, i) => {
    const names = new Set<string>();
    up.rateLimits.forEach((l, j) => {
      const at = (...k: string[]): Path => ['upstreams', i, 'rateLimits', j, ...k];
      // The name keys the buckets and labels the metric: two entries must never share one.
      if (names.has(l.name)) err(at('name'), `duplicate rate limit name "${l.name}"`);
      names.add(l.name);
      if (!/^[A-Za-z0-9_*\/.-]+$/.test(l.method)) err(at('method'), 'a JSON-RPC method name or glob (tools/call, tools/*, *)');
      if (l.tool !== undefined && !/^[A-Za-z0-9_*.\/-]+$/.test(l.tool)) err(at('tool'), 'tool names use letters, digits, _ . / - and * as a wildcard');
      const burst = l.burst ?? l.rate;
      // A batch costs one unit per message: a batch longer than the burst could never pass.
      if (burst !== undefined && burst < raw.limits.maxBatchLength) warn(at(l.burst === undefined ? 'rate' : 'burst'), `a batch of more than ${burst} matching messages is always refused (limits.maxBatchLength is ${raw.limits.maxBatchLength})`);
    });
  });
  const redis = raw.rateLimitStore.redis;
  if (redis === undefined) return;
  const url = parseUrl(redis.url);
  const at: Path = ['rateLimitStore', 'redis', 'url'];
  if (url === undefined || (url.protocol !== 'redis:' && url.protocol !== 'rediss:')) err(at, 'must be a redis:// or rediss:// URL');
  else if (url.protocol === 'redis:' && !isSecureOrLoopback(new URL(`http://${url.host}`))) warn(at, 'plain redis:// beyond loopback: use rediss:// (TLS) so limit state and credentials are not sent in the clear');
  if (!raw.upstreams.some((u) => u.rateLimits.length > 0)) warn(['rateLimitStore', 'redis'], 'no upstream has rateLimits: the shared store is never used');
}
