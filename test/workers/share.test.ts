import { afterEach, describe, expect, it } from 'vitest';
import { createLimitStore } from '../../src/limits/store.ts';
import { parseWorkers, resolveWorkers, sharedListen } from '../../src/workers/listen.ts';
import { shareOf, workerEnv } from '../../src/workers/share.ts';
import { availableParallelism } from 'node:os';

const events = { onFallback: () => undefined, onFallbackCheck: () => undefined };
const window = { kind: 'window', limit: 10, windowMs: 60_000 } as const;

function allowedOf(store: ReturnType<typeof createLimitStore>, calls: number): number {
  let allowed = 0;
  for (let i = 0; i < calls; i++) {
    const o = store.check([{ key: 'alice', params: window, cost: 1 }], 1_000);
    if (!(o instanceof Promise) && o.allowed) allowed++;
  }
  return allowed;
}

afterEach(() => {
  delete process.env['MCP_WARDEN_WORKER_COUNT'];
  delete process.env['MCP_WARDEN_WORKER_ID'];
});

describe('limits held in process memory under serve --workers', () => {
  it('one process allows the whole limit of 10 calls a minute', () => {
    expect(allowedOf(createLimitStore({ maxEntries: 100, redis: undefined }, events), 20)).toBe(10);
  });

  it('each of 2 workers allows 5 of the 10, so both together never allow more than the limit', () => {
    Object.assign(process.env, workerEnv(2, 1));
    expect(allowedOf(createLimitStore({ maxEntries: 100, redis: undefined }, events), 20)).toBe(5);
    expect(shareOf(32)).toBe(16); // maxStreamsPerIdentity 32 → 16 per worker
    expect(shareOf(1)).toBe(1); // never 0: a cap of 1 stays 1 per worker
  });
});

describe('--workers and workers:', () => {
  it('auto is the cores available to this process; a number is itself', () => {
    expect(resolveWorkers('auto')).toBe(availableParallelism());
    expect(resolveWorkers(3)).toBe(3);
    expect(resolveWorkers(undefined)).toBe(1);
  });

  it('parses N from 1 to 256 or auto, nothing else', () => {
    expect(parseWorkers('2')).toBe(2);
    expect(parseWorkers('auto')).toBe('auto');
    for (const bad of ['0', '-1', '1.5', '257', 'two', '', '02']) expect(parseWorkers(bad)).toBeUndefined();
  });

  it('a worker on a fixed port binds its own SO_REUSEPORT socket on Linux; port 0 or one process shares nothing', () => {
    expect(sharedListen(true, 8080)).toEqual(process.platform === 'linux' ? { exclusive: true, reusePort: true } : {});
    expect(sharedListen(true, 0)).toEqual({});
    expect(sharedListen(false, 8080)).toEqual({});
  });
});
