// A/B of a change by the gateway's CPU time per request (issue 25), the measure least moved by other
// load on a shared machine: req/s falls when the cores are busy, CPU seconds per request much less.
// `node bench/cpu-ab.ts <src dir A> <src dir B> [rounds=4] [seconds=5]`: one upstream and IdP; each round
// starts a fresh gateway on A then on B (order alternating by round), warms it, drives it with the
// load generator (warm token) and charges its process's CPU (/proc) to the requests it answered.
// AB_PERSIST=1 instead keeps both up and alternates slices; AB_FLAGS_A/B add Node flags to one side.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startIdp } from './idp.ts';
import { chooseLoadGenerator } from './loadgen.ts';
import { cpuSeconds, freePort, killAllSync, NodeChild } from './proc.ts';
import { BENCH_PATH, BENCH_SCOPE, writeBenchConfig } from './bench-config.ts';

const [a, b] = process.argv.slice(2, 4).map((d) => resolve(d));
const ROUNDS = Number(process.argv[4] ?? 4);
const SECONDS = Number(process.argv[5] ?? 5);
// A fresh gateway costs up to 1.6× more per request in its first seconds (JIT tiers, heap sizing): warm it first.
const WARMUP = Number(process.env['AB_WARMUP_SECONDS'] ?? 8);
// AB_FLAGS_A / AB_FLAGS_B: Node/V8 flags for one side's gateway (the same sources on both sides A/B a flag).
// AB_PERSIST=1: one gateway per side for the whole run, the load alternating between them slice by slice.
const PERSIST = process.env['AB_PERSIST'] === '1';
const flagsOf = (side: 'A' | 'B'): string[] => (process.env[`AB_FLAGS_${side}`] ?? '').split(' ').filter((f) => f !== '');
if (a === undefined || b === undefined) throw new Error('usage: bench/cpu-ab.ts <src A> <src B> [rounds] [seconds]');
const bench = import.meta.dirname;
const tmp = mkdtempSync(join(tmpdir(), 'mcp-warden-ab-'));
const loadgen = chooseLoadGenerator(process.env['BENCH_LOADGEN'] ?? 'auto');

try {
  const idp = await startIdp();
  const upstream = await NodeChild.start('upstream', join(bench, 'upstream.ts'), []);
  const port = await freePort();
  const file = join(tmp, 'mcp-warden.yaml');
  writeBenchConfig(file, { port, idp, target: `http://127.0.0.1:${upstream.info['port'] as number}/mcp`, keyFile: join(tmp, 'gateway.jwk') });
  const token = await idp.mint(`http://127.0.0.1:${port}${BENCH_PATH}`, BENCH_SCOPE);
  const url = `http://127.0.0.1:${port}${BENCH_PATH}`;
  const results: Record<'A' | 'B', number[]> = { A: [], B: [] };
  const charge = async (v: 'A' | 'B', gw: NodeChild, url: string, token: string, label: string): Promise<void> => {
    const cpu0 = cpuSeconds(gw.pid);
    const r = await loadgen.run({ url, seconds: SECONDS, connections: 50, threads: 2, token });
    const us = ((cpuSeconds(gw.pid) - cpu0) / r.requests) * 1e6;
    results[v].push(us);
    console.log(`${label} ${v}: ${us.toFixed(1)} µs CPU/request (${r.rps.toFixed(0)} req/s${r.bad > 0 ? `, ${r.bad} bad` : ''})`);
  };
  if (PERSIST) {
    // Both gateways stay up (each on its own port and audience) and take the load in turns, so a slow
    // phase of the machine falls on both sides of a pair.
    const sides = [];
    for (const v of ['A', 'B'] as const) {
      const p = v === 'A' ? port : await freePort();
      const f = join(tmp, `mcp-warden-${v}.yaml`);
      writeBenchConfig(f, { port: p, idp, target: `http://127.0.0.1:${upstream.info['port'] as number}/mcp`, keyFile: join(tmp, `gateway-${v}.jwk`) });
      const gw = await NodeChild.start(`gateway-${v}`, join(bench, 'gateway-child.ts'), [f, v === 'A' ? a : b], { execArgv: flagsOf(v), readyTimeoutMs: 30_000 });
      const tok = await idp.mint(`http://127.0.0.1:${p}${BENCH_PATH}`, BENCH_SCOPE);
      sides.push({ v, gw, url: `http://127.0.0.1:${p}${BENCH_PATH}`, tok });
    }
    for (const s of sides) await loadgen.run({ url: s.url, seconds: WARMUP, connections: 50, threads: 2, token: s.tok });
    for (let round = 0; round < ROUNDS; round++) {
      for (const s of round % 2 === 0 ? sides : [...sides].reverse()) await charge(s.v, s.gw, s.url, s.tok, `slice ${round + 1}`);
    }
    for (const s of sides) await s.gw.stop();
  } else {
    for (let round = 0; round < ROUNDS; round++) {
      const order: ('A' | 'B')[] = round % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
      for (const v of order) {
        const gw = await NodeChild.start(`gateway-${v}`, join(bench, 'gateway-child.ts'), [file, v === 'A' ? a : b], { execArgv: flagsOf(v), readyTimeoutMs: 30_000 });
        await loadgen.run({ url, seconds: WARMUP, connections: 50, threads: 2, token });
        await charge(v, gw, url, token, `round ${round + 1}`);
        await gw.stop();
      }
    }
  }
  const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
  const ratios = results.A.map((x, i) => (results.B[i] as number) / x);
  console.log(`median µs CPU/request: A ${median(results.A).toFixed(1)}, B ${median(results.B).toFixed(1)}; B/A per round ${ratios.map((r) => r.toFixed(3)).join(', ')} (median ${median(ratios).toFixed(3)})`);
  await upstream.stop();
  await idp.close();
} finally {
  killAllSync();
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(0);
