import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { freePorts } from '../helpers/ports.ts';
import { twoUpstreamConfig } from '../helpers/gateway.ts';

// Attack: a reload that one worker of `serve --workers 2` refuses (its swap failed: the new key source
// answered the other worker's fetch, not its own) left the two workers judging by different configs
// (one refusing a scope the reload took away, the other still allowing it) while /readyz said 200. Now
// /readyz is 503 (configConsistent: false) until every worker serves the same config.

interface WorkerStatus { readonly worker: number; readonly pid: number; readonly ready: boolean; readonly config?: number }

let idp: TestIdp;
let upstream: TestUpstream;
let flaky: Server;
let flakyUrl: string;
let flakyServed = 0;
let dir: string;
let file: string;
let port: number;
let admin: number;
let child: ChildProcess;
let output = '';

const config = (jwksUri: string, scopes: string[]): Record<string, unknown> =>
  twoUpstreamConfig({ issuer: idp.issuer, jwksUri, jwks: { timeoutMs: 1_000 } }, upstream.url, {
    mcp: { scopes },
    root: { listen: { host: '127.0.0.1', port }, admin: { host: '127.0.0.1', port: admin }, identity: { signingKeyFile: join(dir, 'gateway.jwk') } },
  });

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function readyz(): Promise<{ status: number; body: { ready?: boolean; configConsistent?: boolean; workers?: WorkerStatus[] } }> {
  try {
    const r = await request(`http://127.0.0.1:${admin}/readyz`);
    return { status: r.statusCode, body: (await r.body.json()) as { ready?: boolean; workers?: WorkerStatus[] } };
  } catch {
    return { status: 0, body: {} };
  }
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}; output: ${output.slice(-2_000)}`);
}

beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = await TestUpstream.start();
  // A key source that answers one fetch and then fails: the first worker to ask gets the keys.
  flaky = createServer((_req, res) => {
    flakyServed++;
    if (flakyServed === 1) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(idp.jwks()));
    else res.writeHead(503).end();
  });
  await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve));
  flakyUrl = `http://127.0.0.1:${(flaky.address() as AddressInfo).port}/jwks`;
  dir = mkdtempSync(join(tmpdir(), 'mcp-warden-partial-reload-'));
  [port, admin] = (await freePorts(2)) as [number, number];
  file = join(dir, 'config.yaml');
  writeFileSync(file, stringify(config(idp.jwksUri, ['mcp:tools'])));
  child = spawn(process.execPath, ['bin/mcp-warden.js', 'serve', '--config', file, '--workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MCP_WARDEN_LOG_LEVEL: 'warn' } });
  for (const s of [child.stdout, child.stderr]) s?.on('data', (d: Buffer) => (output += d.toString('utf8')));
  await until('both workers ready', async () => (await readyz()).status === 200, 60_000);
}, 70_000);

afterAll(async () => {
  child?.kill('SIGKILL');
  await new Promise<void>((resolve) => (flaky === undefined ? resolve() : flaky.close(() => resolve())));
  await upstream?.close();
  await idp?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('serve --workers 2: a reload only some workers took', () => {
  it('is not ready while the workers serve different configs, and ready again once a reload reaches both', async () => {
    expect((await readyz()).status).toBe(200);
    // The new config takes mcp:tools' access away (it needs mcp:extra too) and moves the key source.
    writeFileSync(file, stringify(config(flakyUrl, ['mcp:tools', 'mcp:extra'])));
    child.kill('SIGHUP');
    await until('the reload refused by one worker', () => output.includes('config_reload_workers'));
    expect(flakyServed).toBeGreaterThanOrEqual(2); // both workers asked; one got the keys
    const split = await readyz();
    expect(split.status).toBe(503);
    expect(split.body.ready).toBe(false);
    expect(split.body.configConsistent).toBe(false);
    expect(new Set(split.body.workers?.map((w) => w.config)).size).toBe(2);
    // Back to one config that every worker can load: consistent and ready again.
    writeFileSync(file, stringify(config(idp.jwksUri, ['mcp:tools'])));
    child.kill('SIGHUP');
    await until('both workers on one config', async () => (await readyz()).status === 200);
    const after = await readyz();
    expect(after.body.configConsistent).toBe(true);
    expect(new Set(after.body.workers?.map((w) => w.config)).size).toBe(1);
  }, 60_000);
});
