import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { AUD } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';

const fx = useGatewayFixture({ overrides: (upstreamUrl) => ({ mcp: { target: `${upstreamUrl}/sse` } }) });

describe('SSE through the gateway', () => {
  it('delivers each of 100 events before the upstream sends the next (no buffering)', async () => {
    const token = await fx.idp.token(AUD);
    // The upstream may send event i+1 only once the client has received event i. If anything in the
    // gateway buffered, the client would never see event i and the gate would time out.
    const received: number[] = [];
    const waiters = new Map<number, () => void>();
    fx.upstream.sseEvents = 100;
    fx.upstream.sseGate = (i) => {
      if (i === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        if (received.includes(i - 1)) return resolve();
        const timer = setTimeout(() => reject(new Error(`event ${i - 1} not delivered before ${i} was due`)), 2_000);
        waiters.set(i - 1, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    };
    const res = await request(fx.gw.url + '/mcp', { method: 'GET', headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream');
    let buffer = '';
    for await (const chunk of res.body) {
      buffer += (chunk as Buffer).toString('utf8');
      let idx: number;
      while ((idx = buffer.indexOf('\n\n')) !== -1) {
        const event = buffer.slice(0, idx);
        buffer = buffer.slice(idx + 2);
        const n = Number(/data: \{"n":(\d+)\}/.exec(event)?.[1]);
        received.push(n);
        waiters.get(n)?.();
      }
    }
    expect(received).toEqual(Array.from({ length: 100 }, (_, i) => i));
    fx.upstream.sseGate = undefined;
  });

  it('tears down the upstream stream when the client goes away', async () => {
    const token = await fx.idp.token(AUD);
    fx.upstream.sseEvents = 3;
    fx.upstream.sseClosed = 0;
    // Event 1 is never released: only a client abort can end this stream.
    fx.upstream.sseGate = (i) => (i === 1 ? new Promise<void>(() => undefined) : Promise.resolve());
    const controller = new AbortController();
    const res = await request(fx.gw.url + '/mcp', { method: 'GET', headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: controller.signal });
    const first = await res.body[Symbol.asyncIterator]().next();
    expect(String(first.value)).toContain('"n":0');
    expect(fx.upstream.sseClosed).toBe(0);
    controller.abort();
    const deadline = Date.now() + 3_000;
    while (fx.upstream.sseClosed === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(fx.upstream.sseClosed).toBe(1);
    fx.upstream.sseGate = undefined;
  });
});

describe('Expect: 100-continue', () => {
  it('answers 100 Continue once the caller is authenticated, then reads and forwards the body', async () => {
    const { rawRequest, statusOf } = await import('../helpers/raw.ts');
    const body = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}';
    const port = Number(new URL(fx.gw.url).port);
    // Headers only: a client that waits for 100 Continue would hang if the gateway read the body first.
    const head = `POST /other-mcp HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer ${await fx.idp.token('https://gw.test/other-mcp')}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`;
    const first = await rawRequest(port, head, 300, 2_000);
    expect(first.startsWith('HTTP/1.1 100 Continue')).toBe(true);
    const whole = await rawRequest(port, head + body, 300, 3_000);
    expect(whole).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    expect(statusOf(whole)).toBe(100);
  });
});

describe('stream lifetime', () => {
  it('refuses a token valid for 30 days before any stream opens; one at the 24 h maximum keeps its stream open', async () => {
    // Streams end when their token expires; a token may not outlive maxTokenLifetimeSeconds (24 h here),
    // so no stream's expiry timer comes near setTimeout's 24.8-day limit.
    const s = Math.floor(Date.now() / 1000);
    fx.upstream.reset();
    const long = await request(fx.gw.url + '/mcp', { method: 'GET', headers: { authorization: `Bearer ${await fx.idp.token(AUD, { iat: s, exp: s + 30 * 86_400 })}`, accept: 'text/event-stream' } });
    expect(long.statusCode).toBe(401);
    expect(((await long.body.json()) as { reason: string }).reason).toBe('token_lifetime_exceeded');
    expect(fx.upstream.received).toHaveLength(0);
    expect(fx.upstream.bytes).toBe(0);
    const token = await fx.idp.token(AUD, { iat: s, exp: s + 86_400 });
    fx.upstream.sseEvents = 2;
    fx.upstream.sseClosed = 0;
    let release: () => void = () => undefined;
    fx.upstream.sseGate = (i) => (i === 1 ? new Promise<void>((r) => (release = r)) : Promise.resolve());
    const res = await request(fx.gw.url + '/mcp', { method: 'GET', headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
    const events = res.body[Symbol.asyncIterator]();
    await events.next();
    await new Promise((r) => setTimeout(r, 300));
    expect(fx.upstream.sseClosed).toBe(0);
    release();
    let text = '';
    for (let r = await events.next(); !r.done; r = await events.next()) text += String(r.value);
    expect(text).toContain('"n":1');
    fx.upstream.sseGate = undefined;
  });
});
