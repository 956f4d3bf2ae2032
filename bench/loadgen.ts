import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { register, stopProcess } from './proc.ts';

// One load generator for every target of a run: wrk when installed (Lua script for the POST body and
// per-request tokens), else autocannon from npm (run in this process, one connection pool).

export interface LoadSpec {
  readonly url: string;
  readonly seconds: number;
  readonly connections: number;
  readonly threads: number;
  /** One token on every request… */
  readonly token?: string;
  /** …or the next token of this file (one per line) on every request. */
  readonly tokensFile?: string;
  /** Start this far into each thread's slice of the token file. */
  readonly tokensOffset?: number;
  /** RFC 9449: `Authorization: DPoP <token>` with the next proof of the file (one per line) on every request. */
  readonly dpop?: { readonly token: string; readonly proofsFile: string };
}

export interface LoadResult {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50ms: number;
  readonly p99ms: number;
  /** Non-2xx responses, socket errors and timeouts: a run with any is reported as failing. */
  readonly bad: number;
}

export type LoadGenerator = { readonly name: string; readonly version: string; run(spec: LoadSpec): Promise<LoadResult> };

export const BODY = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"q":"bench"}}}';
export const REQUEST_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2025-06-18',
};

export function chooseLoadGenerator(wanted: string): LoadGenerator {
  const wrk = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  const wrkVersion = /wrk\s+(\S+)/.exec(`${wrk.stdout ?? ''}${wrk.stderr ?? ''}`)?.[1];
  if (wanted !== 'autocannon' && wrk.error === undefined && wrkVersion !== undefined) return { name: 'wrk', version: wrkVersion, run: runWrk };
  if (wanted === 'wrk') throw new Error('BENCH_LOADGEN=wrk but wrk is not installed (apt-get install -y wrk)');
  const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'node_modules', 'autocannon', 'package.json'), 'utf8')) as { version: string };
  return { name: 'autocannon', version: pkg.version, run: runAutocannon };
}

function runWrk(spec: LoadSpec): Promise<LoadResult> {
  const args = ['-t', String(spec.threads), '-c', String(spec.connections), '-d', `${spec.seconds}s`, '--timeout', '5s', '--latency', '-s', join(import.meta.dirname, 'wrk.lua'), spec.url];
  const env = { ...process.env, WRK_TOKEN: spec.token ?? '', WRK_TOKENS_FILE: spec.tokensFile ?? '', WRK_THREADS: String(spec.threads), WRK_OFFSET: String(spec.tokensOffset ?? 0), WRK_DPOP_TOKEN: spec.dpop?.token ?? '', WRK_PROOFS_FILE: spec.dpop?.proofsFile ?? '' };
  const child = spawn('wrk', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  register(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const limit = setTimeout(() => void stopProcess(child, 1_000), (spec.seconds + 30) * 1_000);
  return new Promise((resolve, reject) => {
    child.once('exit', () => {
      clearTimeout(limit);
      const line = /WRKJSON (\{.*\})/.exec(out)?.[1];
      if (line === undefined) return reject(new Error(`wrk gave no result: ${out.slice(-1_000)}`));
      const r = JSON.parse(line) as { requests: number; duration_us: number; connect: number; read: number; write: number; status: number; timeout: number; p50_us: number; p99_us: number };
      const seconds = r.duration_us / 1e6;
      resolve({ requests: r.requests, seconds, rps: r.requests / seconds, p50ms: r.p50_us / 1000, p99ms: r.p99_us / 1000, bad: r.connect + r.read + r.write + r.status + r.timeout });
    });
  });
}

interface AutocannonResult {
  requests: { total: number };
  latency: { p50: number; p99: number };
  duration: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}
type AutocannonFn = (opts: Record<string, unknown>) => Promise<AutocannonResult>;

async function runAutocannon(spec: LoadSpec): Promise<LoadResult> {
  const autocannon = createRequire(import.meta.url)('autocannon') as AutocannonFn;
  const headers: Record<string, string> = { ...REQUEST_HEADERS };
  if (spec.token !== undefined) headers['authorization'] = `Bearer ${spec.token}`;
  const lines = (file: string): string[] => readFileSync(file, 'utf8').split('\n').filter((t) => t !== '');
  const tokens = spec.tokensFile === undefined ? undefined : lines(spec.tokensFile);
  const proofs = spec.dpop === undefined ? undefined : lines(spec.dpop.proofsFile);
  let i = spec.tokensOffset ?? 0;
  let p = 0;
  const perRequest = (req: { headers: Record<string, string> }): { headers: Record<string, string> } => {
    if (tokens !== undefined) {
      i = (i + 1) % tokens.length;
      req.headers = { ...headers, authorization: `Bearer ${tokens[i]}` };
    } else if (proofs !== undefined && spec.dpop !== undefined) {
      // One proof per request (RFC 9449 §11.1); past the pool's end the replays count as errors.
      p = (p + 1) % proofs.length;
      req.headers = { ...headers, authorization: `DPoP ${spec.dpop.token}`, dpop: proofs[p] as string };
    }
    return req;
  };
  const r = await autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: spec.seconds,
    method: 'POST',
    headers,
    body: BODY,
    ...(tokens === undefined && proofs === undefined ? {} : { requests: [{ setupRequest: perRequest }] }),
  });
  return { requests: r.requests.total, seconds: r.duration, rps: r.requests.total / r.duration, p50ms: r.latency.p50, p99ms: r.latency.p99, bad: r.non2xx + r.errors + r.timeouts };
}
