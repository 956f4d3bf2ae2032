import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { freePorts } from '../helpers/ports.ts';
import { twoUpstreamConfig } from '../helpers/gateway.ts';

// `mcp-warden serve --workers 2` as a real process tree: a primary (admin listener, supervision) and
// two workers on one traffic port.

interface WorkerStatus {
  readonly worker: number;
  readonly pid: number;
  readonly ready: boolean;
}

let idp: TestIdp;
let upstream: TestUpstream;
let dir: string;
let file: string;
let port: number;
let admin: number;
let child: ChildProcess;
let exited: Promise<number | null>;
let stderr = '';

const BODY = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}';
const config = (scopes: string[]): Record<string, unknown> =>
  twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url, {
    mcp: { scopes },
    root: { listen: { host: '127.0.0.1', port }, admin: { host: '127.0.0.1', port: admin }, identity: { signingKeyFile: join(dir, 'gateway.jwk') } },
  });

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function readyz(): Promise<{ status: number; body: { ready?: boolean; workers?: WorkerStatus[] } }> {
  try {
    const r = await request(`http://127.0.0.1:${admin}/readyz`);
    return { status: r.statusCode, body: (await r.body.json()) as { ready?: boolean; workers?: WorkerStatus[] } };
  } catch {
    return { status: 0, body: {} };
  }
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}; stderr: ${stderr.slice(-2_000)}`);
}

const metrics = async (): Promise<string> => (await request(`http://127.0.0.1:${admin}/metrics`)).body.text();
const series = (text: string, name: string): { labels: string; value: number }[] =>
  [...text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, 'gm'))].map((m) => ({ labels: m[1] ?? '', value: Number(m[2]) }));

/** Each call on its own connection, so the kernel (or the cluster primary) spreads them over the workers. */
async function call(token: string, n: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i += 10) {
    statuses.push(...(await Promise.all(Array.from({ length: Math.min(10, n - i) }, async () => {
      const agent = new Agent({ connections: 1 });
      try {
        const r = await request(`http://127.0.0.1:${port}/mcp`, { method: 'POST', dispatcher: agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: BODY });
        await r.body.dump();
        return r.statusCode;
      } finally {
        await agent.close();
      }
    }))));
  }
  return statuses;
}

beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = await TestUpstream.start();
  dir = mkdtempSync(join(tmpdir(), 'mcp-warden-workers-'));
  [port, admin] = (await freePorts(2)) as [number, number];
  file = join(dir, 'config.yaml');
  writeFileSync(file, stringify(config(['mcp:tools'])));
  child = spawn(process.execPath, ['bin/mcp-warden.js', 'serve', '--config', file, '--workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MCP_WARDEN_LOG_LEVEL: 'warn' } });
  for (const s of [child.stdout, child.stderr]) s?.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  // Three Node processes start on a shared, busy machine: allow for it.
  await until('both workers ready', async () => (await readyz()).status === 200, 60_000);
}, 70_000);

afterAll(async () => {
  child?.kill('SIGKILL');
  await upstream?.close();
  await idp?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('mcp-warden serve --workers 2 (real processes)', () => {
  it('reports ready only with both workers ready, two distinct worker pids, neither of them the primary', async () => {
    const { status, body } = await readyz();
    expect(status).toBe(200);
    expect(body.ready).toBe(true);
    expect(body.workers?.map((w) => w.worker).sort()).toEqual([1, 2]);
    const pids = new Set(body.workers?.map((w) => w.pid));
    expect(pids.size).toBe(2);
    expect(pids.has(child.pid as number)).toBe(false);
    expect(body.workers?.every((w) => w.ready)).toBe(true);
  });

  it('serves from both workers on one port, and /metrics on the one admin listener sums them', async () => {
    upstream.reset();
    const token = await idp.token('https://gw.test/mcp');
    const before = series(await metrics(), 'mcp_warden_requests_total').filter((s) => s.labels.includes('outcome="allow"')).reduce((a, s) => a + s.value, 0);
    const statuses = await call(token, 100);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(upstream.received.filter((r) => r.method === 'POST' && r.body === BODY)).toHaveLength(100);
    const text = await metrics();
    const perWorker = series(text, 'mcp_warden_worker_requests_total');
    expect(perWorker.map((s) => s.labels).sort()).toEqual(['{worker="1"}', '{worker="2"}']);
    expect(perWorker.every((s) => s.value > 0)).toBe(true); // both workers answered some of the 100
    const info = series(text, 'mcp_warden_worker_info');
    const { body } = await readyz();
    expect(new Set(info.map((s) => /pid="(\d+)"/.exec(s.labels)?.[1]))).toEqual(new Set(body.workers?.map((w) => String(w.pid))));
    const after = series(text, 'mcp_warden_requests_total').filter((s) => s.labels.includes('outcome="allow"')).reduce((a, s) => a + s.value, 0);
    expect(after - before).toBe(100); // the aggregate counts every worker's requests once
  }, 30_000);

  it('a reload on SIGHUP reaches both workers; a config that does not load reaches none, both keep the one before', async () => {
    const token = await idp.token('https://gw.test/mcp');
    writeFileSync(file, stringify(config(['mcp:tools', 'mcp:extra'])));
    child.kill('SIGHUP');
    await until('both workers on the new config', async () => series(await metrics(), 'mcp_warden_config_reloads_total').find((s) => s.labels.includes('success'))?.value === 2 || (await call(token, 20)).every((s) => s === 403));
    upstream.reset();
    const refused = await call(token, 40);
    expect(refused.every((s) => s === 403)).toBe(true); // every connection, whichever worker took it
    expect(upstream.received).toHaveLength(0);
    writeFileSync(file, 'listen: [not, a, mapping\n');
    child.kill('SIGHUP');
    await until('the bad config reported', async () => stderr.includes('config_reload_failed') || stderr.includes('every worker keeps'));
    const still = await call(token, 40);
    expect(still.every((s) => s === 403)).toBe(true);
    expect(series(await metrics(), 'mcp_warden_config_reloads_total').find((s) => s.labels.includes('failure'))?.value).toBe(0);
    expect((await readyz()).status).toBe(200);
    writeFileSync(file, stringify(config(['mcp:tools'])));
    child.kill('SIGHUP');
    await until('back on the first config', async () => (await call(token, 20)).every((s) => s === 200));
  }, 40_000);

  it('a worker that dies is replaced by a new process and the port keeps serving', async () => {
    const { body } = await readyz();
    const victim = body.workers?.[0]?.pid as number;
    process.kill(victim, 'SIGKILL');
    await until('a new worker ready', async () => {
      const r = await readyz();
      return r.status === 200 && r.body.workers?.length === 2 && !r.body.workers.some((w) => w.pid === victim);
    });
    expect(stderr).toContain('worker_restarted');
    const token = await idp.token('https://gw.test/mcp');
    expect((await call(token, 20)).every((s) => s === 200)).toBe(true);
  }, 30_000);

  it('SIGTERM drains every worker and the primary exits 0', async () => {
    const { body } = await readyz();
    const pids = body.workers?.map((w) => w.pid) ?? [];
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    for (const pid of pids) expect(() => readFileSync(`/proc/${pid}/stat`)).toThrow(); // no worker outlives it
  }, 30_000);
});
