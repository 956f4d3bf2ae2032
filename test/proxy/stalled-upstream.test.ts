import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { TestIdp } from '../helpers/idp.ts';
import { AUD, AUD_OTHER, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { MCP_POST_HEADERS, RPC } from '../helpers/rpc.ts';

// Issue 17 §4: an upstream that sends its headers and then stalls the body. A plain answer has a body
// deadline (bodyTimeoutMs, default timeoutMs) → 504 while nothing reached the client, a cut once the
// headers are out; an SSE stream has an idle limit when sseIdleSeconds is configured.

const DEADLINE_MS = 400;

/** Answers by path with headers and a first piece of body, then never another byte. */
class StallingUpstream {
  readonly server: Server;
  readonly open = new Set<ServerResponse>();
  readonly #sockets = new Set<Socket>();
  requests = 0;
  url = '';
  constructor() {
    this.server = createServer((req, res) => {
      this.requests++;
      req.resume();
      this.open.add(res);
      res.on('close', () => this.open.delete(res));
      const path = req.url ?? '';
      if (path.startsWith('/json')) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
        res.write('{"jsonrpc":"2.0",');
      } else if (path.startsWith('/download')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.write(Buffer.alloc(1024, 'a'));
      } else {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\n');
      }
    });
    this.server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }
  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

let idp: TestIdp;
let stall: StallingUpstream;
let gw: StartedGateway;
beforeAll(async () => {
  idp = await TestIdp.start();
  stall = new StallingUpstream();
  await stall.start();
  gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, stall.url, {
    mcp: { target: `${stall.url}/json`, timeoutMs: DEADLINE_MS },
    other: { target: `${stall.url}/sse`, sseIdleSeconds: 1 },
  }));
});
afterAll(async () => {
  await gw?.close();
  await stall?.close();
  await idp?.close();
});

describe('an upstream that sends headers and then stalls the body', () => {
  it('a JSON answer stalled after its headers is 504 upstream_timeout at the body deadline (timeoutMs), for 50 at once, and the upstream exchange is closed', async () => {
    const token = await idp.token(AUD);
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 50 }, async () => {
      const res = await request(`${gw.url}/mcp`, { method: 'POST', headers: { ...MCP_POST_HEADERS, authorization: `Bearer ${token}` }, body: RPC });
      return { status: res.statusCode, body: await res.body.json() as { reason?: string }, ms: performance.now() - started };
    }));
    expect(results.map((r) => r.status)).toEqual(Array.from({ length: 50 }, () => 504));
    expect(results.every((r) => r.body.reason === 'upstream_timeout')).toBe(true);
    const slowest = Math.max(...results.map((r) => r.ms));
    expect(slowest).toBeGreaterThanOrEqual(DEADLINE_MS);
    expect(slowest).toBeLessThan(DEADLINE_MS + 1_500); // 0 of 50 hung: every one answered within 1.9 s
    await expect.poll(() => stall.open.size, { timeout: 2_000 }).toBe(0);
  });

  it('a streamed (non-JSON) answer whose headers are out is cut at the deadline, not held open', async () => {
    const config = twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, stall.url, { mcp: { target: `${stall.url}/download`, timeoutMs: 30_000, bodyTimeoutMs: DEADLINE_MS } });
    const dl = await startGateway(config);
    try {
      const started = performance.now();
      const res = await request(`${dl.url}/mcp`, { method: 'POST', headers: { ...MCP_POST_HEADERS, authorization: `Bearer ${await idp.token(AUD)}` }, body: RPC });
      expect(res.statusCode).toBe(200);
      let received = 0;
      await expect((async () => {
        for await (const chunk of res.body) received += (chunk as Buffer).length;
      })()).rejects.toThrow();
      expect(received).toBe(1024);
      const ms = performance.now() - started;
      expect(ms).toBeGreaterThanOrEqual(DEADLINE_MS);
      expect(ms).toBeLessThan(DEADLINE_MS + 1_500);
      await expect.poll(() => dl.logs.join(''), { timeout: 2_000 }).toMatch(/"status":200,[^\n]*"reason":"upstream_timeout"|"reason":"upstream_timeout"[^\n]*"status":200/);
    } finally {
      await dl.close();
    }
  });

  it('an SSE stream silent for sseIdleSeconds is ended after the idle limit; events before it arrive', async () => {
    const started = performance.now();
    const res = await request(`${gw.url}/other-mcp`, { method: 'POST', headers: { ...MCP_POST_HEADERS, authorization: `Bearer ${await idp.token(AUD_OTHER)}` }, body: RPC });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    let text = '';
    for await (const chunk of res.body) text += (chunk as Buffer).toString('utf8'); // ends cleanly, at an event boundary
    const ms = performance.now() - started;
    expect(text).toContain('notifications/progress');
    expect(ms).toBeGreaterThanOrEqual(1_000);
    expect(ms).toBeLessThan(2_500);
    await expect.poll(() => stall.open.size, { timeout: 2_000 }).toBe(0);
  });
});
