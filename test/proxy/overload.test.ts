import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pool, request } from 'undici';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, AUD_OTHER, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { RPC } from '../helpers/rpc.ts';

// Issue 17 §8: bounds with clear answers. An upstream that hangs: at most maxInFlight requests in
// flight (503 upstream_busy + Retry-After past it), at most maxConnections sockets to it, the queue
// bounded by both and by timeoutMs; a global cap on open streams; a cap on client connections; and
// /healthz, /readyz answering promptly while the traffic port is saturated.

const IN_FLIGHT = 50;
const SOCKETS = 10;
const TIMEOUT_MS = 3_000;
const STREAMS = 3;

/** Accepts requests and never answers; counts the sockets opened to it. */
class HangingUpstream {
  readonly server: Server = createServer(() => undefined);
  readonly sockets = new Set<Socket>();
  peakSockets = 0;
  url = '';
  async start(): Promise<void> {
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      this.peakSockets = Math.max(this.peakSockets, this.sockets.size);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

let idp: TestIdp;
let hanging: HangingUpstream;
let sse: TestUpstream;
let gw: StartedGateway;
beforeAll(async () => {
  idp = await TestIdp.start();
  hanging = new HangingUpstream();
  await hanging.start();
  sse = await TestUpstream.start();
  gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, sse.url, {
    mcp: { target: `${hanging.url}/mcp`, timeoutMs: TIMEOUT_MS, maxInFlight: IN_FLIGHT, maxConnections: SOCKETS },
    other: { target: `${sse.url}/sse` },
    root: { limits: { maxStreams: STREAMS, maxConnections: 400 } },
  }));
});
afterAll(async () => {
  await gw?.close();
  await hanging?.close();
  await sse?.close();
  await idp?.close();
});

const percentile = (values: readonly number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
};

describe('overload bounds', () => {
  it('a hanging upstream under 200 concurrent requests: 150 shed with 503 at once, ≤ 10 sockets opened, the 50 admitted get 504 at timeoutMs; the admin port stays responsive', async () => {
    const token = await idp.token(AUD);
    const clients = new Pool(gw.url, { connections: 200, pipelining: 1 });
    const started = performance.now();
    let answered = 0;
    const calls = Array.from({ length: 200 }, async () => {
      const res = await clients.request({ path: '/mcp', method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: RPC });
      const body = await res.body.json() as { reason?: string };
      answered++;
      return { status: res.statusCode, reason: body.reason, retryAfter: res.headers['retry-after'], ms: performance.now() - started };
    });
    await expect.poll(() => answered, { timeout: 2_000, interval: 10 }).toBe(200 - IN_FLIGHT); // the shed ones
    // While those hang: a flood of further requests (all shed) on 100 connections, and admin probes.
    const probes: number[] = [];
    let flooding = true;
    const flooded: number[] = [];
    const flood = Array.from({ length: 100 }, async () => {
      while (flooding) {
        const res = await clients.request({ path: '/mcp', method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: RPC });
        await res.body.dump();
        flooded.push(res.statusCode);
      }
    });
    // Until shortly before the admitted ones time out and free their slots.
    setTimeout(() => {
      flooding = false;
    }, TIMEOUT_MS - 300 - (performance.now() - started));
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; flooding; i++) {
      const t = performance.now();
      const res = await request(`${gw.adminUrl}${i % 2 === 0 ? '/healthz' : '/readyz'}`);
      await res.body.dump();
      expect(res.statusCode).toBe(200);
      probes.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all(flood);
    const results = await Promise.all(calls);
    await clients.close();

    const shed = results.filter((r) => r.status === 503);
    const timedOut = results.filter((r) => r.status === 504);
    expect(shed.length).toBe(200 - IN_FLIGHT);
    expect(shed.every((r) => r.reason === 'upstream_busy' && r.retryAfter === '1' && r.ms < 2_000)).toBe(true);
    expect(timedOut.length).toBe(IN_FLIGHT);
    expect(timedOut.every((r) => r.reason === 'upstream_timeout' && r.ms >= TIMEOUT_MS - 50 && r.ms < TIMEOUT_MS + 1_500)).toBe(true);
    expect(hanging.peakSockets).toBeLessThanOrEqual(SOCKETS);
    expect(flooded.length).toBeGreaterThan(100);
    expect(probes.length).toBeGreaterThanOrEqual(5);
    expect(flooded.every((s) => s === 503)).toBe(true);
    console.log(`admin under saturation: p50 ${percentile(probes, 50).toFixed(1)} ms, p99 ${percentile(probes, 99).toFixed(1)} ms, ${flooded.length} shed by the flood`);
    // The flood's client shares this process's event loop with the gateway. Alone on the machine p50 is
    // 25-55 ms and p99 under 160 ms; with other test files running beside it, these bounds still hold.
    expect(percentile(probes, 50)).toBeLessThan(300);
    expect(percentile(probes, 99)).toBeLessThan(1_000);
  });

  it('caps open streams in all: the stream past limits.maxStreams gets 503 streams_exhausted; one closing makes room', async () => {
    sse.sseGate = (i) => (i >= 1 ? new Promise<void>(() => undefined) : Promise.resolve());
    const open = async (): Promise<{ status: number; close: () => void; reason?: string; retryAfter?: unknown }> => {
      const ac = new AbortController();
      const res = await request(`${gw.url}/other-mcp`, { method: 'GET', signal: ac.signal, headers: { authorization: `Bearer ${await idp.token(AUD_OTHER)}`, accept: 'text/event-stream' } });
      if (res.statusCode !== 200) return { status: res.statusCode, close: () => undefined, reason: ((await res.body.json()) as { reason: string }).reason, retryAfter: res.headers['retry-after'] };
      res.body.on('error', () => undefined);
      const first = res.body[Symbol.asyncIterator]();
      await first.next();
      return { status: 200, close: () => ac.abort() };
    };
    const streams = [];
    for (let i = 0; i < STREAMS; i++) streams.push(await open());
    expect(streams.map((s) => s.status)).toEqual([200, 200, 200]);
    const refused = await open();
    expect(refused).toMatchObject({ status: 503, reason: 'streams_exhausted', retryAfter: '10' });
    streams[0]?.close();
    await expect.poll(() => gw.gateway.metrics.registry.getSingleMetric('mcp_warden_active_streams') !== undefined, { timeout: 1_000 }).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    const again = await open();
    expect(again.status).toBe(200);
    for (const s of [...streams, again]) s.close();
    sse.sseGate = undefined;
  });

  it('caps client connections at limits.maxConnections: past it new connections are dropped, the admin port still answers', async () => {
    const port = Number(new URL(gw.url).port);
    const sockets: Socket[] = [];
    const opened = await Promise.all(Array.from({ length: 420 }, () => new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      sockets.push(s);
      let closed = false;
      s.on('close', () => {
        closed = true;
      });
      s.on('error', () => undefined);
      setTimeout(() => resolve(!closed && !s.destroyed), 500);
    })));
    const kept = opened.filter(Boolean).length;
    expect(kept).toBeLessThanOrEqual(400);
    expect(kept).toBeGreaterThanOrEqual(390); // the cap, give or take what the earlier cases left open
    const health = await request(`${gw.adminUrl}/healthz`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();
    for (const s of sockets) s.destroy();
  });
});
