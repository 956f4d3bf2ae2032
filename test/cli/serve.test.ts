import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { freePorts } from '../helpers/ports.ts';
import { twoUpstreamConfig } from '../helpers/gateway.ts';

let idp: TestIdp;
let upstream: TestUpstream;
let dir: string;
beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = await TestUpstream.start();
  dir = mkdtempSync(join(tmpdir(), 'mcp-warden-cli-'));
});
afterAll(async () => {
  upstream.sseGate = undefined;
  await upstream?.close();
  await idp?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('mcp-warden serve (the real process)', () => {
  it('on SIGTERM ends an open SSE stream with a final event and exits 0', async () => {
    const [port, admin] = await freePorts(2);
    const config = twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url, {
      other: { target: `${upstream.url}/sse` },
      root: { listen: { host: '127.0.0.1', port }, admin: { host: '127.0.0.1', port: admin }, identity: { signingKeyFile: join(dir, 'gateway.jwk') } },
    });
    const file = join(dir, 'config.yaml');
    writeFileSync(file, stringify(config));
    const child = spawn(process.execPath, ['bin/mcp-warden.js', 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MCP_WARDEN_LOG_LEVEL: 'info' } });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      for (let i = 0; i < 100; i++) {
        const ok = await request(`http://127.0.0.1:${admin}/readyz`).then(async (r) => (await r.body.dump(), r.statusCode === 200), () => false);
        if (ok) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      upstream.sseEvents = 5;
      upstream.sseGate = (i) => (i >= 1 ? new Promise<void>(() => undefined) : Promise.resolve());
      const res = await request(`http://127.0.0.1:${port}/other-mcp`, { method: 'GET', headers: { authorization: `Bearer ${await idp.token('https://gw.test/other-mcp')}`, accept: 'text/event-stream' } });
      expect(res.statusCode).toBe(200);
      const events = res.body[Symbol.asyncIterator]();
      let text = String((await events.next()).value);
      child.kill('SIGTERM');
      for (let r = await events.next(); !r.done; r = await events.next()) text += String(r.value);
      expect(text).toMatch(/data: \{"n":0\}\n\nevent: shutdown\nretry: 1000\ndata: \{"reason":"gateway shutting down"\}\n\n$/);
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('with limits.memoryMiB runs under V8 limits from that budget: the young generation stays bounded through a burst and RSS returns near its baseline', async () => {
    const [port, admin] = await freePorts(2);
    const config = twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url, {
      root: { listen: { host: '127.0.0.1', port }, admin: { host: '127.0.0.1', port: admin }, identity: { signingKeyFile: join(dir, 'gateway-mem.jwk') }, limits: { memoryMiB: 128 } },
    });
    const file = join(dir, 'config-mem.yaml');
    writeFileSync(file, stringify(config));
    const child = spawn(process.execPath, ['bin/mcp-warden.js', 'serve', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, MCP_WARDEN_LOG_LEVEL: 'warn' } });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      for (let i = 0; i < 100; i++) {
        const ok = await request(`http://127.0.0.1:${admin}/readyz`).then(async (r) => (await r.body.dump(), r.statusCode === 200), () => false);
        if (ok) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      // The serving process is the relay's child, started with the budget's limits (128 MiB: 89 + 2).
      const sized = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
      expect(readFileSync(`/proc/${sized}/cmdline`, 'utf8').split('\0')).toEqual(expect.arrayContaining(['--max-old-space-size=89', '--max-semi-space-size=2']));
      const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${sized}/status`, 'utf8'))?.[1] ?? 0) / 1024;
      const newSpace = async (): Promise<number> => {
        const text = await (await request(`http://127.0.0.1:${admin}/metrics`)).body.text();
        return Number(/^mcp_warden_nodejs_heap_space_size_total_bytes\{space="new"\} (\S+)/m.exec(text)?.[1] ?? NaN) / 2 ** 20;
      };
      const baseline = rss();
      // A burst of fast refusals (no token), 50 at a time: the allocation pattern that grew the young generation.
      for (let n = 0; n < 4_000; n += 50) {
        await Promise.all(Array.from({ length: 50 }, async () => {
          const res = await request(`http://127.0.0.1:${port}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
          await res.body.dump();
        }));
      }
      const peakNew = await newSpace();
      await new Promise((r) => setTimeout(r, 1_500));
      const after = rss();
      process.stdout.write(`memoryMiB 128: RSS ${baseline.toFixed(0)} MiB before, ${after.toFixed(0)} MiB 1.5 s after a 4,000-request burst; new space ${peakNew.toFixed(1)} MiB\n`);
      expect(peakNew).toBeLessThanOrEqual(8); // two 2 MiB semi-spaces and then some, not 32-128 MiB
      expect(after).toBeLessThan(baseline + 32);
      child.kill('SIGTERM'); // relayed to the sized process, which drains and exits 0
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 30_000);
});
