import type { Config, UpstreamConfig } from '../config/compile.ts';
import type { LimitRule } from '../limits/rules.ts';
import { AGENTIC } from './controls.ts';
import { isLive, type Drill, type RecordResult as Record } from './drill.ts';
import { json, mcpCall, type Reply } from './http.ts';

// Bounds that keep a drill against a live deployment short and harmless: it bursts only limits that a
// tools/list counts against (never a tool call, which could act), in at most BURSTS bursts of at most
// MAX_BURST + 1 calls, and waits at most this long for the refill.
const MAX_BURST = 200;
const MAX_WAIT_SECONDS = 60;
const BURSTS = 3;

function size(rule: LimitRule): number {
  return rule.params.kind === 'bucket' ? rule.params.burst : rule.params.limit;
}

export const rateLimit: Drill = {
  id: 'rate-limit', title: 'rate limit', controls: [AGENTIC],
  async run(ctx) {
    const live = await ctx.live();
    await rateLimitDrill(ctx.config, ctx.urlOf, (u) => isLive(live) ? live.token(u) : Promise.reject(new Error(live.reason)), ctx.record);
  },
};

/**
 * Burst past a rate limit, see 429 with Retry-After and a JSON-RPC error, wait that long, see 200.
 * Only when the config has a limit a tools/list can drill; otherwise nothing is recorded.
 */
async function rateLimitDrill(config: Config, urlOf: (u: UpstreamConfig) => string, token: (u: UpstreamConfig) => Promise<string>, record: Record): Promise<void> {
  const limited = config.upstreams.filter((u) => u.rateLimits.length > 0);
  if (limited.length === 0) return;
  const drillable = limited.flatMap((u) => u.rateLimits.filter((r) => r.counts({ literal: 'tools/list', folded: 'tools/list' }, undefined)).map((rule) => ({ u, rule })));
  const target = drillable.sort((x, y) => size(x.rule) - size(y.rule))[0];
  if (target === undefined || size(target.rule) > MAX_BURST) {
    record('rate limit', 'skip', target === undefined ? 'no limit counts tools/list; tool limits are not drilled (a call could act)' : `the smallest limit (${target.rule.name}) allows ${size(target.rule)} calls: too many to burst from a drill`);
    return;
  }
  const { u, rule } = target;
  let t: string;
  try {
    t = await token(u);
  } catch (err) {
    record('rate limit', 'fail', `no token for ${u.name}: ${(err as Error).message}`);
    return;
  }
  // Each burst is sent at once: sent one by one, a loaded machine's latency lets the bucket refill
  // between calls and a correct limit looks absent. A refill during a burst is covered by the next.
  let refused: Reply | undefined;
  let sent = 0;
  for (let burst = 0; burst < BURSTS && refused === undefined; burst++) {
    const replies = await Promise.all(Array.from({ length: size(rule) + 1 }, () => mcpCall(urlOf(u), t)));
    sent += replies.length;
    const odd = replies.find((r) => r.status !== 200 && r.status !== 429);
    if (odd !== undefined) return record('rate limit', 'fail', `a call of the burst answered ${odd.status}`);
    refused = replies.find((r) => r.status === 429);
  }
  if (refused === undefined) return record('rate limit', 'fail', `${sent} calls within ${rule.name} were all allowed`);
  const retryAfter = Number(refused.headers['retry-after']);
  const body = json<{ error?: { data?: { reason?: string } } }>(refused);
  if (!Number.isInteger(retryAfter) || retryAfter < 1 || body?.error?.data?.reason !== 'rate_limited') {
    return record('rate limit', 'fail', `429 without a Retry-After in seconds or a JSON-RPC rate_limited error (Retry-After: ${String(refused.headers['retry-after'])})`);
  }
  if (retryAfter > MAX_WAIT_SECONDS) return record('rate limit', 'pass', `429 after the burst on ${u.name} (${rule.name}), Retry-After ${retryAfter} s: too long to wait out in a drill`);
  await new Promise((r) => setTimeout(r, retryAfter * 1000));
  const after = await mcpCall(urlOf(u), t);
  record('rate limit', after.status === 200 ? 'pass' : 'fail', `429 with Retry-After ${retryAfter} s on ${u.name} (${rule.name}); after the wait ${after.status}`);
}
