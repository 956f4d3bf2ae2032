import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { request } from 'undici';
import { TestIdp } from '../helpers/idp.ts';
import { AUD, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';

// How upstream response bodies reach the client: small JSON answers are collected and sent whole (so a
// broken one is still a clean 502), large or non-JSON bodies are streamed. The upstream is a raw TCP
// server so the test controls the exact framing, including broken framing.

type Mode = (socket: Socket) => void;
const RPC = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}';
let idp: TestIdp;
let raw: Server;
let gw: StartedGateway;
let mode: Mode = () => undefined;
let upstreamRequests = 0;
let release: () => void = () => undefined;

beforeAll(async () => {
  idp = await TestIdp.start();
  raw = createServer((socket) => {
    let seen = '';
    socket.on('data', (d: Buffer) => {
      seen += d.toString('latin1');
      if (!seen.includes('\r\n\r\n') || !seen.endsWith(RPC)) return;
      seen = '';
      upstreamRequests++;
      mode(socket);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(raw.address() as { port: number }).port}`;
  gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, url));
});
afterAll(async () => {
  await gw?.close();
  raw?.close();
  await idp?.close();
});

async function call(): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string; endAt: number }> {
  const res = await request(`${gw.url}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${await idp.token(AUD)}`, 'content-type': 'application/json' }, body: RPC });
  const chunks: Buffer[] = [];
  for await (const chunk of res.body) {
    if (chunks.length === 0) release();
    chunks.push(chunk as Buffer);
  }
  return { status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), endAt: Date.now() };
}

const chunk = (s: string): string => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('upstream response bodies', () => {
  it('a chunked JSON answer reaches the client whole, with its length declared', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'a' }, { name: 'b' }] } });
    mode = (s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
      s.write(chunk(body.slice(0, 10)));
      setTimeout(() => s.write(chunk(body.slice(10)) + '0\r\n\r\n'), 20);
    };
    const r = await call();
    expect(r.status).toBe(200);
    expect(r.text).toBe(body);
    expect(r.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(r.headers['transfer-encoding']).toBeUndefined();
  });

  it('a JSON answer over 64 KiB is streamed through intact', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { blob: 'x'.repeat(200 * 1024) } });
    mode = (s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
      for (let i = 0; i < body.length; i += 16 * 1024) s.write(chunk(body.slice(i, i + 16 * 1024)));
      s.write('0\r\n\r\n');
    };
    const r = await call();
    expect(r.status).toBe(200);
    expect(r.text).toBe(body);
  });

  it('a non-JSON body of unknown length is streamed, not held until its end', async () => {
    mode = (s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n');
      s.write(chunk('{"n":1}\n'));
      // The rest only once the client has the first line (or after 3 s, which fails the timing assertion).
      const late = setTimeout(() => release(), 3_000);
      release = () => {
        clearTimeout(late);
        release = () => undefined;
        s.write(chunk('{"n":2}\n') + '0\r\n\r\n');
      };
    };
    const started = Date.now();
    const r = await call();
    expect(r.status).toBe(200);
    expect(r.text).toBe('{"n":1}\n{"n":2}\n');
    // Held until its end, the first line would only arrive after the 3 s fallback.
    expect(r.endAt - started).toBeLessThan(2_000);
  });

  it('an answer shorter than its Content-Length becomes a 502, and none of it reaches the client', async () => {
    mode = (s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"jsonrpc":"2.0","id":1,"result":{"secret-partial"');
      void sleep(20).then(() => s.destroy());
    };
    const r = await call();
    expect(r.status).toBe(502);
    expect(JSON.parse(r.text)).toMatchObject({ error: 'bad_gateway', reason: 'upstream_unavailable' });
    expect(r.text).not.toContain('secret-partial');
  });

  it('a chunked JSON answer cut off before its last chunk becomes a 502', async () => {
    mode = (s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n' + chunk('{"jsonrpc":"2.0","id":1,"result":{"cut-partial"'));
      void sleep(20).then(() => s.destroy());
    };
    const before = upstreamRequests;
    const r = await call();
    expect(upstreamRequests).toBe(before + 1);
    expect(r.status).toBe(502);
    expect(r.text).not.toContain('cut-partial');
  });

  it('a 204 answer stays bodiless, with no Content-Length added', async () => {
    mode = (s) => s.write('HTTP/1.1 204 No Content\r\n\r\n');
    const r = await call();
    expect(r.status).toBe(204);
    expect(r.text).toBe('');
    expect(r.headers['content-length']).toBeUndefined();
  });
});
