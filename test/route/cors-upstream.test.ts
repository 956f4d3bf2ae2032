import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUD, PUBLIC_URL, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { TestIdp } from '../helpers/idp.ts';
import { RPC } from '../helpers/rpc.ts';
import { sendExact } from '../helpers/wire.ts';

// Attack: the gateway's CORS answer was laid over the upstream's with Object.assign. An upstream's
// `Access-Control-Allow-Credentials: true`, `Access-Control-Allow-Headers: *` or (without an Origin)
// `Access-Control-Allow-Origin: *` reached the browser, and the upstream's `Vary: Accept-Encoding,
// Authorization` was replaced by `Vary: Origin`, so a shared cache keyed the answer on less than it
// depends on. The gateway alone answers CORS now, and Vary is merged.

let idp: TestIdp;
let upstream: Server;
let received = 0;
let gw: StartedGateway;

beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = createServer((req, res) => {
    received++;
    req.resume();
    req.on('end', () => res.writeHead(200, {
      'content-type': 'application/json',
      vary: 'Accept-Encoding, Authorization',
      'access-control-allow-origin': '*',
      'access-control-allow-credentials': 'true',
      'access-control-allow-headers': '*',
      'access-control-expose-headers': 'x-internal-debug',
      'access-control-max-age': '86400',
    }).end('{"jsonrpc":"2.0","id":1,"result":{}}'));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, url));
});
afterAll(async () => {
  await gw?.close();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
  await idp?.close();
});

const port = (): number => Number(new URL(gw.url).port);
const list = (value: string | string[] | undefined): string[] => String(value ?? '').split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');

describe("the upstream's CORS headers never reach the browser", () => {
  it('an allowed origin gets only the gateway\'s CORS headers, and Vary keeps the upstream\'s names beside Origin', async () => {
    received = 0;
    const reply = await sendExact(port(), 'POST', '/mcp', [['Authorization', `Bearer ${await idp.token(AUD)}`], ['Content-Type', 'application/json'], ['Origin', PUBLIC_URL]], RPC);
    expect(reply.status).toBe(200);
    expect(received).toBe(1);
    expect(reply.headers['access-control-allow-origin']).toBe(PUBLIC_URL);
    expect(reply.headers['access-control-allow-credentials']).toBeUndefined();
    expect(reply.headers['access-control-allow-headers']).toBeUndefined();
    expect(reply.headers['access-control-max-age']).toBeUndefined();
    expect(list(reply.headers['access-control-expose-headers'])).not.toContain('x-internal-debug');
    expect(list(reply.headers['vary']).sort()).toEqual(['accept-encoding', 'authorization', 'origin']);
  });

  it('a request without Origin gets no access-control-* header at all, the upstream\'s Vary unchanged', async () => {
    received = 0;
    const reply = await sendExact(port(), 'POST', '/mcp', [['Authorization', `Bearer ${await idp.token(AUD)}`], ['Content-Type', 'application/json']], RPC);
    expect(reply.status).toBe(200);
    expect(received).toBe(1);
    expect(Object.keys(reply.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
    expect(list(reply.headers['vary'])).toEqual(['accept-encoding', 'authorization']);
  });
});
