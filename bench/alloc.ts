// `npm run bench:alloc`: heap bytes allocated and system calls made per proxied request (issue 25: "how
// many syscalls and allocations per proxied request against the bare proxy"), for the machinery floor,
// the bare proxy and the warm gateway. Each process runs with a young generation large enough that no
// GC happens while N requests (default 3000, 16 in flight) pass, so the growth of its heap over them is
// what they allocated; a window with a GC in it is measured again (at most 3 times), and said. With
// strace installed, `strace -c -f` is attached for another N requests and its counts divided by N.
// ALLOC_PROF=<file> also keeps a sampled allocation profile of the gateway (.heapprofile, for DevTools).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { startIdp } from './idp.ts';
import { BODY, REQUEST_HEADERS } from './loadgen.ts';
import { freePort, killAllSync, NodeChild } from './proc.ts';
import { BENCH_PATH, BENCH_SCOPE, writeBenchConfig } from './bench-config.ts';

const N = Number(process.env['N'] ?? 3_000);
const FLAGS = ['--max-semi-space-size=256', '--min-semi-space-size=256'];
const bench = import.meta.dirname;
const tmp = mkdtempSync(join(tmpdir(), 'mcp-warden-alloc-'));

async function drive(url: string, token: string | undefined, count: number): Promise<void> {
  const u = new URL(url);
  const pool = new Pool(u.origin, { connections: 16 });
  const headers = { ...REQUEST_HEADERS, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next++ < count) {
      const r = await pool.request({ path: u.pathname, method: 'POST', headers, body: BODY });
      await r.body.text();
      if (r.statusCode !== 200) throw new Error(`${url}: ${r.statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await pool.close();
}

const STRACE = spawnSync('strace', ['-V']).status === 0;

/** System calls per request, by name (those at ≥ 0.01 per request), from strace -c over N requests. */
async function syscalls(child: NodeChild, url: string, token: string | undefined): Promise<string> {
  if (!STRACE) return 'strace not installed (apt-get install -y strace)';
  const file = join(tmp, `strace-${child.pid}.txt`);
  const tracer = spawn('strace', ['-c', '-f', '-o', file, '-p', String(child.pid)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500)); // attached
  await drive(url, token, N);
  const exited = new Promise((r) => tracer.once('exit', r));
  tracer.kill('SIGINT');
  await exited;
  const rows = readFileSync(file, 'utf8').split('\n').map((l) => l.trim().split(/\s+/)).filter((c) => c.length >= 5 && /^\d+$/.test(c[3] as string));
  return rows.map((c) => [c.at(-1) as string, Number(c[3]) / N] as const).filter(([name, n]) => n >= 0.01 && name !== 'total').map(([name, n]) => `${name} ${n.toFixed(2)}`).join(', ');
}

/** One target's row: KiB allocated per request (or why not measured) and its system calls per request. */
export interface MachineryRow {
  readonly target: string;
  readonly kibPerRequest: number | undefined;
  readonly allocation: string;
  readonly syscalls: string;
}

async function perRequest(name: string, child: NodeChild, url: string, token?: string): Promise<MachineryRow> {
  await drive(url, token, 2_000); // warm: JIT, pools, caches
  const a = await allocated(child, url, token);
  return { target: name, ...a, syscalls: await syscalls(child, url, token) };
}

async function allocated(child: NodeChild, url: string, token?: string): Promise<{ kibPerRequest: number | undefined; allocation: string }> {
  for (let attempt = 1; attempt <= 3; attempt++) {
    const before = await child.call<{ heapUsedBytes: number; gcCount: number }>('stats');
    await drive(url, token, N);
    const after = await child.call<{ heapUsedBytes: number; gcCount: number }>('stats');
    const kib = (after.heapUsedBytes - before.heapUsedBytes) / N / 1024;
    if (after.gcCount === before.gcCount) return { kibPerRequest: kib, allocation: `${kib.toFixed(1)} KiB (${N} requests, no GC in the window${attempt > 1 ? `, attempt ${attempt}` : ''})` };
  }
  return { kibPerRequest: undefined, allocation: 'not measured: a GC in each of 3 windows' };
}

try {
  const idp = await startIdp();
  const upstream = await NodeChild.start('upstream', join(bench, 'upstream.ts'), []);
  const target = `http://127.0.0.1:${upstream.info['port'] as number}/mcp`;
  const lines: MachineryRow[] = [];
  const floor = await NodeChild.start('floor', join(bench, 'floor-proxy.ts'), [target], { execArgv: FLAGS });
  lines.push(await perRequest('machinery floor (node:http + undici dispatch)', floor, `http://127.0.0.1:${floor.info['port'] as number}/mcp`));
  await floor.stop();
  const bare = await NodeChild.start('bare', join(bench, 'bare-proxy.ts'), [target], { execArgv: FLAGS });
  lines.push(await perRequest('bare proxy (http-proxy-3)', bare, `http://127.0.0.1:${bare.info['port'] as number}/mcp`));
  await bare.stop();
  const port = await freePort();
  const file = join(tmp, 'mcp-warden.yaml');
  writeBenchConfig(file, { port, idp, target, keyFile: join(tmp, 'gateway.jwk') });
  const token = await idp.mint(`http://127.0.0.1:${port}${BENCH_PATH}`, BENCH_SCOPE);
  const gw = await NodeChild.start('gateway', join(bench, 'gateway-child.ts'), [file, process.env['BENCH_SRC'] ?? join(bench, '..', 'src')], { execArgv: FLAGS, readyTimeoutMs: 30_000 });
  lines.push(await perRequest('mcp-warden, warm cache', gw, `http://127.0.0.1:${port}${BENCH_PATH}`, token));
  // ALLOC_PROF=<file>: a sampled allocation profile (which code allocates what) of N more warm requests.
  const allocProfile = process.env['ALLOC_PROF'];
  if (allocProfile !== undefined && allocProfile !== '') {
    await gw.call('allocStart');
    await drive(`http://127.0.0.1:${port}${BENCH_PATH}`, token, N);
    await gw.call('allocStop', allocProfile);
  }
  await gw.stop();
  if (process.env['ALLOC_JSON'] === '1') console.log(JSON.stringify(lines));
  else for (const l of lines) console.log(`${l.target.padEnd(44)} ${l.allocation}\n${''.padEnd(44)} syscalls per request: ${l.syscalls}`);
  await upstream.stop();
  await idp.close();
} finally {
  killAllSync();
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(0);
