// A/B of a change by the gateway's CPU time per request (issue 25), the measure least moved by other
// load on a shared machine: req/s falls when the cores are busy, CPU seconds per request much less.
// `node bench/cpu-ab.ts <src dir A> <src dir B> [rounds=4] [seconds=5]`: one upstream and IdP; each round
// starts a fresh gateway on A then on B (order alternating by round), warms it, drives it with the
// load generator (warm token) and charges its process's CPU (/proc) to the requests it answered.
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
  for (let round = 0; round < ROUNDS; round++) {
    const order: ('A' | 'B')[] = round % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
    for (const v of order) {
      const gw = await NodeChild.start(`gateway-${v}`, join(bench, 'gateway-child.ts'), [file, v === 'A' ? a : b], { readyTimeoutMs: 30_000 });
      await loadgen.run({ url, seconds: WARMUP, connections: 50, threads: 2, token });
      const cpu0 = cpuSeconds(gw.pid);
      const r = await loadgen.run({ url, seconds: SECONDS, connections: 50, threads: 2, token });
      const us = ((cpuSeconds(gw.pid) - cpu0) / r.requests) * 1e6;
      results[v].push(us);
      console.log(`round ${round + 1} ${v}: ${us.toFixed(1)} µs CPU/request (${r.rps.toFixed(0)} req/s${r.bad > 0 ? `, ${r.bad} bad` : ''})`);
      await gw.stop();
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
