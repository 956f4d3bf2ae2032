import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { stringify } from 'yaml';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, AUD_OTHER, startGateway, type StartedGateway } from '../helpers/gateway.ts';
import { freePorts } from '../helpers/ports.ts';
import { MCP_POST_HEADERS, RPC } from '../helpers/rpc.ts';
import { client, revocationConfig, SESSION_REVOKED, TestTransmitter, until } from '../helpers/transmitter.ts';

// Issue 21 §2 and §4: a stream unreadable past its bound is reported and (failClosed) refuses the
// issuer's tokens; a restarted gateway pulls the retention window again; two gateway processes pulling
// one transmitter both cut a client within 2 s.

let idp: TestIdp;
let upstream: TestUpstream;
let tx: TestTransmitter;
let dir: string;
const gateways: StartedGateway[] = [];
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mcp-warden-ssf-'));
  idp = await TestIdp.start();
  upstream = await TestUpstream.start();
  tx = await TestTransmitter.start(idp, 'https://gw.test/ssf');
});
afterEach(async () => {
  tx.down = false;
  upstream.sseGate = undefined;
  for (const g of gateways.splice(0)) await g.close();
});
afterAll(async () => {
  await tx?.close();
  await upstream?.close();
  await idp?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function status(url: string, token: string): Promise<number> {
  const res = await request(`${url}/mcp`, { method: 'POST', headers: { ...MCP_POST_HEADERS, authorization: `Bearer ${token}` }, body: RPC });
  await res.body.dump();
  return res.statusCode;
}

async function started(extra: Record<string, unknown> = {}): Promise<StartedGateway> {
  const g = await startGateway(revocationConfig(idp.issuer, idp.jwksUri, upstream.url, tx.url, dir, extra));
  gateways.push(g);
  return g;
}

describe('an SSF stream that cannot be read', () => {
  it('with failClosed: refuses the issuer\'s tokens (503 revocation_stale), ends its streams, is not ready, and recovers when the stream is read again', async () => {
    const gw = await started({ failClosed: true, staleAfterSeconds: 1 });
    const token = await idp.token(AUD, { sub: 'fc-user' });
    expect(await until(async () => (await status(gw.url, token)) === 200, 3_000)).toBe(true);
    upstream.sseGate = (i) => (i >= 1 ? new Promise<void>(() => undefined) : Promise.resolve());
    const res = await request(`${gw.url}/other-mcp`, { method: 'GET', headers: { authorization: `Bearer ${await idp.token(AUD_OTHER, { sub: 'fc-user' })}`, accept: 'text/event-stream' } });
    let text = '';
    const ended = (async () => {
      for await (const chunk of res.body) text += String(chunk);
    })().catch(() => undefined);
    tx.down = true;
    expect(await until(async () => (await status(gw.url, token)) === 503, 4_000)).toBe(true);
    await Promise.race([ended, new Promise((r) => setTimeout(r, 2_000))]);
    expect(text).toContain('event: revoked\ndata: {"reason":"revocation_stale"}');
    const ready = await request(`${gw.adminUrl}/readyz`);
    expect(ready.statusCode).toBe(503);
    expect(await ready.body.json()).toMatchObject({ ready: false, revocation: { streams: [{ issuer: 'idp', stale: true, failClosed: true, lastError: 'status 503' }] } });
    expect(await (await request(`${gw.adminUrl}/metrics`)).body.text()).toMatch(/^mcp_warden_ssf_stream_stale\{issuer="idp"\} 1$/m);
    expect(gw.logs.join('')).toContain('"reason":"revocation_stale"');
    tx.down = false;
    expect(await until(async () => (await status(gw.url, token)) === 200, 3_000)).toBe(true);
    expect((await request(`${gw.adminUrl}/readyz`)).statusCode).toBe(200);
  });

  it('without failClosed: reports the stale stream in /readyz and the metric, and keeps serving', async () => {
    const gw = await started({ staleAfterSeconds: 1 });
    tx.down = true;
    const token = await idp.token(AUD, { sub: 'open-user' });
    expect(await until(async () => ((await (await request(`${gw.adminUrl}/metrics`)).body.text()).includes('mcp_warden_ssf_stream_stale{issuer="idp"} 1')), 4_000)).toBe(true);
    const ready = await request(`${gw.adminUrl}/readyz`);
    expect(ready.statusCode).toBe(200);
    expect(await ready.body.json()).toMatchObject({ revocation: { streams: [{ stale: true, failClosed: false }] } });
    expect(await status(gw.url, token)).toBe(200);
  });
});

describe('restart', () => {
  it('a restarted gateway keeps the revocations: as a new receiver it pulls the transmitter\'s retention window again', async () => {
    const token = await idp.token(AUD, { sub: 'restart-user', client_id: 'restart-client' });
    const first = await started();
    await tx.publish(SESSION_REVOKED, { subject: client('restart-client'), event_timestamp: Math.floor(Date.now() / 1000) });
    expect(await until(async () => (await status(first.url, token)) === 401, 2_000)).toBe(true);
    await first.close();
    gateways.splice(gateways.indexOf(first), 1);
    // failClosed: the new process refuses until its first poll, so no request slips in before it knows.
    const second = await started({ failClosed: true });
    expect(await status(second.url, token)).not.toBe(200);
    expect(await until(async () => second.logs.join('').includes('"event":"revocation_applied"'), 2_000)).toBe(true);
    expect(await status(second.url, token)).toBe(401);
    expect(await status(second.url, await idp.token(AUD, { sub: 'restart-user', client_id: 'another-client' }))).toBe(200);
  });
});

describe('two gateway processes pulling one transmitter', () => {
  it('both refuse a revoked client\'s cached token within 2 s', { timeout: 90_000 }, async () => {
    const children: ChildProcess[] = [];
    try {
      const urls: string[] = [];
      for (let i = 0; i < 2; i++) {
        const [port, admin] = await freePorts(2);
        const config = revocationConfig(idp.issuer, idp.jwksUri, upstream.url, tx.url, dir);
        Object.assign(config, { listen: { host: '127.0.0.1', port }, admin: { host: '127.0.0.1', port: admin }, identity: { signingKeyFile: join(dir, `gw${i}.jwk`) } });
        const file = join(dir, `replica${i}.yaml`);
        writeFileSync(file, stringify(config));
        children.push(spawn(process.execPath, ['bin/mcp-warden.js', 'serve', '--config', file], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, MCP_WARDEN_LOG_LEVEL: 'warn' } }));
        urls.push(`http://127.0.0.1:${port}`);
        expect(await until(() => request(`http://127.0.0.1:${admin}/readyz`).then(async (r) => (await r.body.dump(), r.statusCode === 200), () => false), 40_000)).toBe(true);
      }
      const token = await idp.token(AUD, { sub: 'fleet-agent', client_id: 'fleet-client' });
      for (const url of urls) {
        expect(await status(url, token)).toBe(200);
        expect(await status(url, token)).toBe(200); // cached on both
      }
      const t0 = Date.now();
      await tx.publish(SESSION_REVOKED, { subject: client('fleet-client'), event_timestamp: Math.floor(Date.now() / 1000) });
      const cut = await Promise.all(urls.map(async (url) => ((await until(async () => (await status(url, token)) === 401, 2_000)) ? Date.now() - t0 : undefined)));
      console.log(`two gateway processes: revoked client refused after ${cut.map((ms) => `${ms ?? '>2000'} ms`).join(' and ')}`);
      for (const ms of cut) {
        expect(ms).toBeDefined();
        expect(ms as number).toBeLessThan(2_000);
      }
    } finally {
      for (const c of children) c.kill('SIGKILL');
    }
  });
});

