import { beforeEach, describe, expect, it } from 'vitest';
import { AUD } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { sendExact } from '../helpers/wire.ts';

// Issue 15 point 7: Last-Event-ID is bound to the caller as Mcp-Session-Id is. The upstream's /sse
// emits `id: 0`, `id: 1`, `id: 2`; the gateway re-emits them bound to the identity that opened the
// stream, and restores the upstream's id only for that identity.

const fx = useGatewayFixture({ overrides: (upstreamUrl) => ({ mcp: { target: `${upstreamUrl}/sse` } }) });
beforeEach(() => {
  fx.upstream.reset();
  fx.upstream.sseGate = undefined;
  fx.upstream.sseEvents = 3;
});

const ids = (text: string): string[] => [...text.matchAll(/^id: (.*)$/gm)].map((m) => m[1] as string);
const open = (token: string, lastEventId?: string): ReturnType<typeof sendExact> =>
  sendExact(fx.port, 'GET', '/mcp', [['Authorization', `Bearer ${token}`], ['Accept', 'text/event-stream'], ...(lastEventId === undefined ? [] : [['Last-Event-ID', lastEventId] as const])]);

describe('SSE event ids are bound to the caller (Last-Event-ID)', () => {
  it("SC-192 re-emits every upstream event id bound to the caller, and resumes only the caller's own", async () => {
    const alice = await fx.idp.token(AUD, { sub: 'alice' });
    const first = await open(alice);
    expect(first.status).toBe(200);
    const seen = ids(first.text);
    expect(seen).toHaveLength(3);
    seen.forEach((id, i) => expect(id).toMatch(new RegExp(`^${i}\\.[A-Za-z0-9_-]{22}$`)));
    expect(fx.upstream.received[0]?.headers.has('last-event-id')).toBe(false);

    fx.upstream.reset();
    const resumed = await open(alice, seen[1]);
    expect(resumed.status).toBe(200);
    expect(fx.upstream.received[0]?.headers.get('last-event-id')).toEqual(['1']);
  });

  it("SC-192 refuses another identity's event id with 404, as for an unknown one; nothing reaches the upstream", async () => {
    const alice = await fx.idp.token(AUD, { sub: 'alice' });
    const bob = await fx.idp.token(AUD, { sub: 'bob' });
    const aliceIds = ids((await open(alice)).text);
    fx.upstream.reset();
    const replay = await open(bob, aliceIds[0]);
    expect(replay.status).toBe(404);
    expect(JSON.parse(replay.text)).toMatchObject({ reason: 'event_id_unknown' });
    expect(fx.upstream.received).toHaveLength(0);
    expect(fx.upstream.bytes).toBe(0);
  });

  it.each(['0', '1', 'e0', '0.AAAAAAAAAAAAAAAAAAAAAA', 'x'.repeat(600)])('SC-192 refuses an unbound or forged Last-Event-ID %j with 404', async (forged) => {
    const alice = await fx.idp.token(AUD, { sub: 'alice' });
    const reply = await open(alice, forged);
    expect(reply.status).toBe(404);
    expect(JSON.parse(reply.text)).toMatchObject({ reason: 'event_id_unknown' });
    expect(fx.upstream.bytes).toBe(0);
  });

  it('SC-192 a session id is not an event id: the binding kinds cannot be swapped', async () => {
    const alice = await fx.idp.token(AUD, { sub: 'alice' });
    const aliceIds = ids((await open(alice)).text);
    fx.upstream.reset();
    const asSession = await sendExact(fx.port, 'GET', '/mcp', [['Authorization', `Bearer ${alice}`], ['Accept', 'text/event-stream'], ['Mcp-Session-Id', aliceIds[0] as string]]);
    expect(asSession.status).toBe(404);
    expect(JSON.parse(asSession.text)).toMatchObject({ reason: 'session_unknown' });
    expect(fx.upstream.bytes).toBe(0);
  });
});
