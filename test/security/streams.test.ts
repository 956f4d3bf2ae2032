import { afterAll, describe, expect, it } from 'vitest';
import { request, type Dispatcher } from 'undici';
import { AUD } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';

const fx = useGatewayFixture({
  overrides: (upstreamUrl) => ({ mcp: { target: `${upstreamUrl}/sse` }, root: { limits: { maxStreamsPerIdentity: 5 } } }),
});
afterAll(() => {
  fx.upstream.sseGate = undefined;
});

const open = async (token: string): Promise<Dispatcher.ResponseData> =>
  request(`${fx.gw.url}/mcp`, { method: 'GET', headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });

describe('stream limits', () => {
  it('SC-155 one identity gets 429 past its stream cap; other identities are unaffected; a closed stream frees a place', async () => {
    fx.upstream.sseEvents = 2;
    fx.upstream.sseGate = (i) => (i === 1 ? new Promise<void>(() => undefined) : Promise.resolve()); // streams stay open
    const alice = await fx.idp.token(AUD, { sub: 'alice' });
    const streams: Dispatcher.ResponseData[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await open(alice);
      expect(res.statusCode).toBe(200);
      await res.body[Symbol.asyncIterator]().next();
      streams.push(res);
    }
    const before = fx.upstream.received.length;
    const sixth = await open(alice);
    expect(sixth.statusCode).toBe(429);
    expect(sixth.headers['retry-after']).toBe('10');
    expect(JSON.parse(await sixth.body.text()).reason).toBe('too_many_streams');
    expect(fx.upstream.received.length).toBe(before); // refused before the upstream
    // A refreshed token of the same identity counts against the same cap.
    expect((await open(await fx.idp.token(AUD, { sub: 'alice' }))).statusCode).toBe(429);
    const bob = await open(await fx.idp.token(AUD, { sub: 'bob' }));
    expect(bob.statusCode).toBe(200);
    bob.body.destroy();
    streams.shift()?.body.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const again = await open(alice);
    expect(again.statusCode).toBe(200);
    again.body.destroy();
    for (const s of streams) s.body.destroy();
  });
});
