import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pool, request } from 'undici';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { RPC } from '../helpers/rpc.ts';

// Issue 17 §7: SIGTERM under load. Busy keep-alive connections must not keep carrying requests, nothing
// that started may be reset, /readyz goes 503 first and the listener closes only after drainDelayMs.

const DELAY_MS = 400;
const UPSTREAM_MS = 150;
const CONNECTIONS = 8;

let idp: TestIdp;
let upstream: TestUpstream;
let gw: StartedGateway;
beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = await TestUpstream.start();
  upstream.slowMs = UPSTREAM_MS;
  gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url, {
    mcp: { target: `${upstream.url}/slow` },
    root: { limits: { drainDelayMs: DELAY_MS, shutdownGraceMs: 3_000 } },
  }));
});
afterAll(async () => {
  await upstream?.close();
  await idp?.close();
});

interface Outcome {
  readonly sentAt: number;
  readonly doneAt: number;
  readonly status: number | undefined;
  readonly connection: string | undefined;
  readonly error: string | undefined;
}

describe('drain under load (SIGTERM with busy keep-alive connections)', () => {
  it('goes unready first, answers Connection: close, closes the listener after drainDelayMs and resets nothing that started', async () => {
    const token = await idp.token(AUD);
    upstream.reset();
    const pool = new Pool(gw.url, { connections: CONNECTIONS, pipelining: 1 });
    const outcomes: Outcome[] = [];
    let stop = false;
    const loop = async (): Promise<void> => {
      while (!stop) {
        const sentAt = performance.now();
        try {
          const res = await pool.request({ path: '/mcp', method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: RPC });
          await res.body.dump();
          outcomes.push({ sentAt, doneAt: performance.now(), status: res.statusCode, connection: res.headers['connection'] as string | undefined, error: undefined });
        } catch (err) {
          const code = (err as { code?: string }).code ?? 'error';
          outcomes.push({ sentAt, doneAt: performance.now(), status: undefined, connection: undefined, error: code });
          if (code === 'ECONNREFUSED') return; // the listener is closed: this client is done
        }
      }
    };
    const loops = Array.from({ length: CONNECTIONS }, () => loop());
    await new Promise((r) => setTimeout(r, 700)); // steady load on 8 keep-alive connections

    const t0 = performance.now();
    const stopping = gw.gateway.shutdown();
    const ready = await request(`${gw.adminUrl}/readyz`);
    const readyAt = performance.now();
    expect(ready.statusCode).toBe(503);
    expect(await ready.body.json()).toMatchObject({ ready: false, draining: true });
    await stopping;
    const stoppedAt = performance.now();
    stop = true;
    await Promise.all(loops);
    await pool.close();

    const before = outcomes.filter((o) => o.doneAt < t0);
    const after = outcomes.filter((o) => o.doneAt >= t0 && o.status !== undefined);
    const resets = outcomes.filter((o) => o.error !== undefined && o.error !== 'ECONNREFUSED');
    expect(before.length).toBeGreaterThanOrEqual(CONNECTIONS);
    expect(before.every((o) => o.status === 200 && o.connection !== 'close')).toBe(true);
    expect(readyAt - t0).toBeLessThan(DELAY_MS); // unready while the listener still serves
    // Served during the delay (load balancers still send): every request sent after SIGTERM is answered
    // with Connection: close; only responses whose headers were already out at SIGTERM lack it.
    expect(after.filter((o) => o.sentAt >= t0).length).toBeGreaterThanOrEqual(CONNECTIONS);
    expect(after.filter((o) => o.sentAt >= t0).every((o) => o.status === 200 && o.connection === 'close')).toBe(true);
    expect(after.filter((o) => o.connection !== 'close').length).toBeLessThanOrEqual(CONNECTIONS);
    expect(after.every((o) => o.status === 200)).toBe(true);
    // 0 requests that started were reset: every request the upstream received was answered 200.
    const answered = outcomes.filter((o) => o.status === 200).length;
    expect(upstream.received.length).toBe(answered);
    // A connection still in the kernel's accept queue when the listener closes is reset by the kernel
    // before its request is read (it never started); on a loaded machine one per client at most.
    expect(resets.length).toBeLessThanOrEqual(CONNECTIONS);
    expect(resets.every((o) => o.error === 'ECONNRESET' && o.sentAt - t0 < DELAY_MS + 50)).toBe(true);
    // After the listener closed only what was already in flight was answered: at most one per connection.
    const servedLate = after.filter((o) => o.sentAt > t0 + DELAY_MS + 20);
    expect(servedLate.length).toBeLessThanOrEqual(CONNECTIONS);
    expect(outcomes.filter((o) => o.error === 'ECONNREFUSED').length).toBe(CONNECTIONS);
    expect(stoppedAt - t0).toBeGreaterThanOrEqual(DELAY_MS);
    expect(stoppedAt - t0).toBeLessThan(DELAY_MS + UPSTREAM_MS + 1_000); // no wait for the grace: nothing left
  });

  it('cuts only what outlives shutdownGraceMs, once the grace is over', async () => {
    const slow = await TestUpstream.start();
    slow.slowMs = 10_000;
    const g = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, slow.url, {
      mcp: { target: `${slow.url}/slow` },
      root: { limits: { shutdownGraceMs: 300 } },
    }));
    try {
      const pending = request(`${g.url}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${await idp.token(AUD)}`, 'content-type': 'application/json' }, body: RPC })
        .then(() => 'answered', (err: unknown) => (err as { code?: string }).code);
      await expect.poll(() => slow.received.length, { timeout: 2_000 }).toBe(1);
      const t0 = performance.now();
      await g.gateway.shutdown();
      const ms = performance.now() - t0;
      expect(await pending).toBe('UND_ERR_SOCKET'); // the one request that outlived the grace
      expect(ms).toBeGreaterThanOrEqual(300);
      expect(ms).toBeLessThan(1_300);
    } finally {
      await slow.close();
    }
  });
});
