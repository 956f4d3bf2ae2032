import { Redis } from 'ioredis';
import type { Charge, Outcome } from './local.ts';
import { ALLOWED } from './local.ts';

// The same steps as bucket.ts, in one Lua script: every charge is judged, then all are spent or none,
// atomically and in one round trip (Redis runs a script alone). KEYS[i] is charge i; ARGV[1] is now in
// ms, then four values per charge: kind (b|w), burst|limit, refill per ms|window ms, cost. Keys expire
// once they hold nothing (bucket full again, window over), so Redis memory is bounded by active callers.
const SCRIPT = `
local now = tonumber(ARGV[1])
local nextv, nexta, ttl = {}, {}, {}
local worst, worstWait = 0, 0
for i = 1, #KEYS do
  local o = 1 + (i - 1) * 4
  local kind, a, b, cost = ARGV[o + 1], tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3]), tonumber(ARGV[o + 4])
  local s = redis.call('HMGET', KEYS[i], 'v', 'at')
  local v, at = tonumber(s[1]), tonumber(s[2])
  local wait = 0
  if kind == 'b' then
    local tokens = a
    if v ~= nil and at ~= nil then tokens = math.min(a, v + math.max(0, now - at) * b) end
    if tokens >= cost then
      nextv[i], nexta[i] = tokens - cost, now
      ttl[i] = math.ceil((a - nextv[i]) / b) + 1000
    else
      wait = math.max(1, math.ceil((math.min(cost, a) - tokens) / b))
    end
  else
    local start = math.floor(now / b) * b
    local spent = 0
    if v ~= nil and at == start then spent = v end
    if spent + cost <= a then
      nextv[i], nexta[i] = spent + cost, start
      ttl[i] = start + b - now + 1000
    else
      wait = math.max(1, start + b - now)
    end
  end
  if wait > worstWait then worst, worstWait = i, wait end
end
if worst > 0 then return {0, worst - 1, worstWait} end
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], 'v', string.format('%.17g', nextv[i]), 'at', string.format('%d', nexta[i]))
  redis.call('PEXPIRE', KEYS[i], ttl[i])
end
return {1, 0, 0}
`;

interface LimitClient extends Redis {
  wardenLimit(numKeys: number, ...args: (string | number)[]): Promise<[number, number, number]>;
}

export interface SharedOptions {
  readonly url: string;
  readonly keyPrefix: string;
  readonly timeoutMs: number;
}

/** Buckets in Redis or Valkey, shared by every replica; the caller decides what an error means. */
export class SharedBuckets {
  readonly #client: LimitClient;
  readonly #prefix: string;

  constructor(options: SharedOptions, onConnection: (up: boolean) => void) {
    this.#prefix = options.keyPrefix;
    // No offline queue and no retries: while the store is away a check fails at once (and falls back)
    // instead of waiting; the client reconnects in the background.
    const client = new Redis(options.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.timeoutMs,
      connectTimeout: Math.max(1_000, options.timeoutMs),
      retryStrategy: (times) => Math.min(100 * times, 2_000),
    });
    client.defineCommand('wardenLimit', { lua: SCRIPT });
    // Errors are reported through onConnection; an unhandled 'error' event would print the URL.
    client.on('error', () => onConnection(false));
    client.on('close', () => onConnection(false));
    client.on('ready', () => onConnection(true));
    this.#client = client as LimitClient;
  }

  get ready(): boolean {
    return this.#client.status === 'ready';
  }

  async check(charges: readonly Charge[], now: number): Promise<Outcome> {
    const keys = charges.map((c) => this.#prefix + c.key);
    const args: (string | number)[] = [Math.floor(now)];
    for (const c of charges) {
      if (c.params.kind === 'bucket') args.push('b', c.params.burst, c.params.refillPerMs, c.cost);
      else args.push('w', c.params.limit, c.params.windowMs, c.cost);
    }
    const [allowed, index, retryAfterMs] = await this.#client.wardenLimit(keys.length, ...keys, ...args);
    return allowed === 1 ? ALLOWED : { allowed: false, index, retryAfterMs };
  }

  async close(): Promise<void> {
    this.#client.disconnect();
  }
}
