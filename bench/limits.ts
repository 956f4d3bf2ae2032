// The rate-limit stage's own cost per request, without HTTP: the local check (SHA-256 key, two rules,
// the in-memory buckets) and the shared check (one EVALSHA round trip to a loopback redis-server),
// called from `npm run bench` (run.ts) or alone: `node bench/limits.ts`. The shared part is skipped
// when redis-server is not installed.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './proc.ts';

export interface LimitBench {
  readonly localNsPerCheck: number;
  readonly localChecks: number;
  readonly shared: { readonly p50us: number; readonly p99us: number; readonly serialChecks: number; readonly concurrentOpsPerSecond: number; readonly inFlight: number } | string;
}

type Check = () => unknown;

/** Builds the stage from the sources under test (BENCH_SRC) for `identities` distinct callers. */
async function stageCheck(src: string, store: unknown, identities: number): Promise<Check> {
  const { createCallLimits } = (await import(join(src, 'limits/calls.ts'))) as typeof import('../src/limits/calls.ts');
  const { compileLimits } = (await import(join(src, 'limits/rules.ts'))) as typeof import('../src/limits/rules.ts');
  const rules = compileLimits([
    { name: 'calls', method: '*', perSeconds: 1, rate: 1_000_000, burst: 1_000_000 },
    { name: 'deletes', method: '*', tool: 'delete_*', perSeconds: 1, quota: 100_000_000, windowSeconds: 3600 },
  ]);
  const limit = createCallLimits(store as Parameters<typeof createCallLimits>[0], Date.now);
  const upstream = { name: 'files', rateLimits: rules };
  const judged = { inspected: { body: Buffer.alloc(0), batch: false, messages: [{ kind: 'request', method: 'tools/call', id: 1, name: 'search', uri: undefined }] } };
  const principals = Array.from({ length: identities }, (_, i) => ({ iss: 'https://idp.example', sub: `user-${i}`, clientId: 'agent', claims: {} }));
  let i = 0;
  return () => {
    const ctx = { record: { rule: undefined } };
    // The stage reads only these fields; the casts keep the bench free of a whole gateway.
    return limit(ctx as never, { upstream } as never, principals[i++ % identities] as never, judged as never);
  };
}

async function localBench(src: string): Promise<{ ns: number; checks: number }> {
  const { LocalBuckets } = (await import(join(src, 'limits/local.ts'))) as typeof import('../src/limits/local.ts');
  const buckets = new LocalBuckets(100_000);
  const check = await stageCheck(src, { signature: '', check: (c: never, now: number) => buckets.check(c, now), status: () => ({}), close: async () => undefined }, 10_000);
  for (let i = 0; i < 50_000; i++) check(); // warm-up: JIT and a full set of buckets
  const checks = 300_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < checks; i++) check();
  return { ns: Number(process.hrtime.bigint() - t0) / checks, checks };
}

async function sharedBench(src: string): Promise<LimitBench['shared']> {
  if (spawnSync('redis-server', ['--version']).status !== 0) return 'skipped: redis-server is not installed';
  const port = await freePort();
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  try {
    const { createLimitStore } = (await import(join(src, 'limits/store.ts'))) as typeof import('../src/limits/store.ts');
    const store = createLimitStore({ maxEntries: 100_000, redis: { url: `redis://127.0.0.1:${port}`, keyPrefix: 'bench:', timeoutMs: 1_000, replicas: 1 } }, { onFallback: () => undefined, onFallbackCheck: () => undefined });
    const deadline = Date.now() + 10_000;
    while (store.status().mode !== 'shared') {
      if (Date.now() > deadline) return 'skipped: redis-server did not accept connections within 10 s';
      await new Promise((r) => setTimeout(r, 50));
      await store.check([], Date.now());
    }
    const check = await stageCheck(src, store, 10_000);
    for (let i = 0; i < 2_000; i++) await check();
    const serialChecks = 10_000;
    const times: number[] = [];
    for (let i = 0; i < serialChecks; i++) {
      const t0 = process.hrtime.bigint();
      await check();
      times.push(Number(process.hrtime.bigint() - t0) / 1_000);
    }
    times.sort((a, b) => a - b);
    const inFlight = 50;
    const total = 40_000;
    let next = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (next++ < total) await check();
    }));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (store.status().mode !== 'shared') return 'invalid: the store fell back during the run';
    await store.close();
    return { p50us: times[Math.floor(serialChecks * 0.5)] as number, p99us: times[Math.floor(serialChecks * 0.99)] as number, serialChecks, concurrentOpsPerSecond: total / seconds, inFlight };
  } finally {
    redis.kill('SIGKILL');
  }
}

export async function benchLimits(src: string): Promise<LimitBench> {
  const local = await localBench(src);
  return { localNsPerCheck: local.ns, localChecks: local.checks, shared: await sharedBench(src) };
}

export function renderLimitBench(b: LimitBench): string[] {
  const L = ['## Rate-limit check per request (stage alone, no HTTP)', ''];
  L.push(`- local buckets (two rules, one matching; 10,000 identities, their SHA-256 keys cached per token): **${(b.localNsPerCheck / 1000).toFixed(2)} µs** per check (${b.localChecks.toLocaleString('en-US')} checks)`);
  if (typeof b.shared === 'string') L.push(`- shared buckets (Redis): ${b.shared}`);
  else {
    L.push(`- shared buckets (one Lua script round trip to a loopback redis-server): p50 **${b.shared.p50us.toFixed(0)} µs**, p99 ${b.shared.p99us.toFixed(0)} µs per check, one at a time (${b.shared.serialChecks.toLocaleString('en-US')} checks)`);
    L.push(`- shared buckets, ${b.shared.inFlight} checks in flight: ${b.shared.concurrentOpsPerSecond.toFixed(0)} checks/s on one connection`);
  }
  L.push('');
  return L;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const src = process.env['BENCH_SRC'] ?? join(import.meta.dirname, '..', 'src');
  console.log(renderLimitBench(await benchLimits(src)).join('\n'));
}
