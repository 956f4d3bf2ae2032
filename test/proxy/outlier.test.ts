import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { TestIdp } from '../helpers/idp.ts';
import { AUD, AUD_OTHER, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { RPC } from '../helpers/rpc.ts';

// Issue 17 §10: passive outlier detection, off by default. An upstream failing consecutiveFailures
// times in a row is taken out for ejectSeconds (doubling per ejection in a row, up to maxEjectSeconds):
// 503 upstream_ejected meanwhile, nothing sent to it; then one trial request. /readyz shows it, and
// readiness itself does not depend on it.

/** Answers 500 while `failing`, else a JSON-RPC result; counts requests. */
class FlakyUpstream {
  readonly server: Server;
  failing = true;
  requests = 0;
  url = '';
  constructor() {
    this.server = createServer((req, res) => {
      this.requests++;
      req.resume();
      if (this.failing) return void res.writeHead(500, { 'content-type': 'application/json' }).end('{}');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{}}');
    });
  }
  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
}

let idp: TestIdp;
let flaky: FlakyUpstream;
let gw: StartedGateway;
let clock = Date.now();
beforeAll(async () => {
  idp = await TestIdp.start();
  flaky = new FlakyUpstream();
  await flaky.start();
  gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, flaky.url, {
    mcp: { target: `${flaky.url}/mcp`, outlierDetection: { consecutiveFailures: 3, ejectSeconds: 10, maxEjectSeconds: 15 } },
    other: { target: `${flaky.url}/mcp` }, // the same failing server, without outlier detection
  }), { now: () => clock });
});
afterAll(async () => {
  await gw?.close();
  await new Promise((resolve) => flaky?.server.close(resolve));
  await idp?.close();
});

async function call(aud: string, path: string): Promise<{ status: number; reason: string | undefined; retryAfter: unknown }> {
  const res = await request(`${gw.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${await idp.token(aud, { iat: Math.floor(clock / 1000), exp: Math.floor(clock / 1000) + 3_600 })}`, 'content-type': 'application/json' }, body: RPC });
  const text = await res.body.text();
  return { status: res.statusCode, reason: res.statusCode >= 400 && text.startsWith('{"error"') ? (JSON.parse(text) as { reason?: string }).reason : undefined, retryAfter: res.headers['retry-after'] };
}
async function readyz(): Promise<{ status: number; body: { upstreams?: unknown } }> {
  const res = await request(`${gw.adminUrl}/readyz`);
  return { status: res.statusCode, body: await res.body.json() as { upstreams?: unknown } };
}

describe('passive outlier detection', () => {
  it('takes a failing upstream out after 3 failures in a row, answers 503 meanwhile, tries once per period, and puts it back on success', async () => {
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await call(AUD, '/mcp')).status);
    expect(statuses).toEqual([500, 500, 500]); // the upstream's own answers pass through
    const seen = flaky.requests;
    expect(await call(AUD, '/mcp')).toEqual({ status: 503, reason: 'upstream_ejected', retryAfter: '10' });
    expect(flaky.requests).toBe(seen); // nothing sent while it is out
    expect(await readyz()).toEqual({ status: 200, body: expect.objectContaining({ ready: true, upstreams: [{ name: 'mcp', healthy: false, ejectedSeconds: 10, consecutiveFailures: 3 }] }) });

    clock += 10_000; // the period is over: one trial, which fails: out again, for twice as long (capped at 15 s)
    expect((await call(AUD, '/mcp')).status).toBe(500);
    expect(flaky.requests).toBe(seen + 1);
    expect((await call(AUD, '/mcp')).reason).toBe('upstream_ejected');
    clock += 14_000;
    expect((await call(AUD, '/mcp')).reason).toBe('upstream_ejected');
    flaky.failing = false;
    clock += 1_000;
    expect((await call(AUD, '/mcp')).status).toBe(200); // the trial succeeds: back in
    expect((await call(AUD, '/mcp')).status).toBe(200);
    expect((await readyz()).body.upstreams).toEqual([{ name: 'mcp', healthy: true, ejectedSeconds: 0, consecutiveFailures: 0 }]);
  });

  it('is off by default: an upstream without outlierDetection answering 500 ten times in a row is never taken out', async () => {
    flaky.failing = true;
    const before = flaky.requests;
    for (let i = 0; i < 10; i++) expect((await call(AUD_OTHER, '/other-mcp')).status).toBe(500);
    expect(flaky.requests - before).toBe(10);
    flaky.failing = false;
  });
});
