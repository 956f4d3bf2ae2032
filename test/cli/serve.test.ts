import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
});
