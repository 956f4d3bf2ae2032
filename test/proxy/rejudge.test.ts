import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { parse, stringify } from 'yaml';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD_OTHER, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { MCP_POST_HEADERS } from '../helpers/rpc.ts';
import { dpopKey, proofFor } from '../helpers/dpop.ts';

// Issue 17 §5: open streams are judged again when what allowed them changes: a reload (client
// allow-list, tool rules), the key that verified their token leaving the JWKS, their issuer failing
// closed. One no longer allowed ends with `event: revoked` and its reason; the others go on.

let idp: TestIdp | undefined;
let upstream: TestUpstream | undefined;
let gw: StartedGateway | undefined;
let clock = Date.now();
afterEach(async () => {
  if (upstream !== undefined) upstream.sseGate = undefined;
  await gw?.close();
  await upstream?.close();
  await idp?.close();
  gw = undefined;
});

async function start(jwks: Record<string, number> = {}): Promise<{ idp: TestIdp; upstream: TestUpstream; gw: StartedGateway }> {
  clock = Date.now();
  idp = await TestIdp.start();
  upstream = await TestUpstream.start();
  // Every stream sends its first event, then stays open with nothing more to say.
  upstream.sseGate = (i) => (i >= 1 ? new Promise<void>(() => undefined) : Promise.resolve());
  gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri, jwks }, upstream.url, { other: { target: `${upstream.url}/sse` } }), { now: () => clock });
  return { idp, upstream, gw };
}

interface OpenedStream {
  /** Everything received so far. */
  text(): string;
  /** Resolves with the whole text once the gateway ended the stream, or undefined if still open after ms. */
  endedWithin(ms: number): Promise<string | undefined>;
}

async function openStream(g: StartedGateway, token: string, post?: object): Promise<OpenedStream> {
  const res = await request(`${g.url}/other-mcp`, post === undefined
    ? { method: 'GET', headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } }
    : { method: 'POST', headers: { ...MCP_POST_HEADERS, authorization: `Bearer ${token}` }, body: JSON.stringify(post) });
  expect(res.statusCode).toBe(200);
  let text = '';
  let first: () => void = () => undefined;
  const gotFirst = new Promise<void>((resolve) => {
    first = resolve;
  });
  const ended = (async () => {
    try {
      for await (const chunk of res.body) {
        text += String(chunk);
        first();
      }
    } catch { /* cut */ }
  })();
  await gotFirst;
  return {
    text: () => text,
    endedWithin: async (ms) => {
      const done = await Promise.race([ended.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
      return done ? text : undefined;
    },
  };
}

function editConfig(g: StartedGateway, edit: (doc: { issuers: Record<string, unknown>[]; upstreams: Record<string, unknown>[] }) => void): Promise<boolean> {
  const doc = parse(readFileSync(g.configFile, 'utf8')) as { issuers: Record<string, unknown>[]; upstreams: Record<string, unknown>[] };
  edit(doc);
  writeFileSync(g.configFile, stringify(doc));
  return g.gateway.reloadFromFile();
}

const TOOL_CALL = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'export_all', arguments: {} } };

describe('open streams judged again', () => {
  it('at reload: streams of a client taken off the allow-list and of a tool now denied end with a final event; the 4 still allowed go on', async () => {
    const { idp: i, gw: g } = await start();
    const kept = await Promise.all(Array.from({ length: 4 }, async () => openStream(g, await i.token(AUD_OTHER))));
    const dropped = await Promise.all(Array.from({ length: 3 }, async () => openStream(g, await i.token(AUD_OTHER, { client_id: 'old-client' }))));
    const tool = await openStream(g, await i.token(AUD_OTHER), TOOL_CALL);
    expect(await editConfig(g, (doc) => {
      const other = doc.upstreams[1] as Record<string, unknown>;
      other['clients'] = ['test-client'];
      other['rules'] = [{ method: 'tools/call', tool: 'export_all', deny: true }];
    })).toBe(true);
    for (const s of dropped) expect(await s.endedWithin(2_000)).toMatch(/event: revoked\ndata: \{"reason":"client_not_allowed"\}\n\n$/);
    expect(await tool.endedWithin(2_000)).toMatch(/event: revoked\ndata: \{"reason":"policy_denied"\}\n\n$/);
    for (const s of kept) expect(await s.endedWithin(300)).toBeUndefined(); // 4 of 4 still open
    await expect.poll(() => upstream?.sseClosed, { timeout: 2_000 }).toBe(4); // the upstream side closed too
    await expect.poll(() => g.logs.join('').match(/"reason":"client_not_allowed"/g)?.length ?? 0, { timeout: 2_000 }).toBe(3);
  });

  it('when the key that verified its token leaves the JWKS: that stream ends (key_unknown), one verified by another key goes on', async () => {
    const { idp: i, gw: g } = await start();
    await i.addKey('k2', 'ES256');
    await g.gateway.issuerKeys.get('idp')?.refresh();
    const byK2 = await openStream(g, await i.token(AUD_OTHER, {}, { kid: 'k2' }));
    const byK1 = await openStream(g, await i.token(AUD_OTHER));
    i.published.delete('k2');
    await g.gateway.issuerKeys.get('idp')?.refresh();
    expect(await byK2.endedWithin(2_000)).toMatch(/event: revoked\ndata: \{"reason":"key_unknown"\}\n\n$/);
    expect(await byK1.endedWithin(300)).toBeUndefined();
  });

  it('when the key that verified a DPoP-bound token leaves the JWKS: its stream, opened under the DPoP scheme, ends too (key_unknown)', async () => {
    const { idp: i, gw: g } = await start();
    await i.addKey('k2', 'ES256');
    await g.gateway.issuerKeys.get('idp')?.refresh();
    const holder = await dpopKey('ES256');
    const token = await i.token(AUD_OTHER, { cnf: { jkt: holder.jkt } }, { kid: 'k2' });
    const proof = await proofFor(holder, { htm: 'GET', htu: AUD_OTHER, token, iat: Math.floor(clock / 1000) }); // the gateway's (frozen) clock
    const res = await request(`${g.url}/other-mcp`, { method: 'GET', headers: { authorization: `DPoP ${token}`, dpop: proof, accept: 'text/event-stream' } });
    expect(res.statusCode).toBe(200);
    let text = '';
    const ended = (async () => {
      for await (const chunk of res.body) text += String(chunk);
    })().catch(() => undefined);
    await expect.poll(() => text, { timeout: 2_000 }).toContain('data: {"n":0}');
    i.published.delete('k2');
    await g.gateway.issuerKeys.get('idp')?.refresh();
    const done = await Promise.race([ended.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 2_000))]);
    expect(done).toBe(true);
    expect(text).toMatch(/event: revoked\ndata: \{"reason":"key_unknown"\}\n\n$/);
  });

  it('when its issuer fails closed after the stale window: every stream of that issuer ends (jwks_unavailable)', async () => {
    const { idp: i, gw: g } = await start({ cacheMaxAgeSeconds: 10, staleIfErrorSeconds: 20 });
    const keys = g.gateway.issuerKeys.get('idp');
    keys?.maintain(); // the tick that sees the keys usable
    const streams = await Promise.all(Array.from({ length: 3 }, async () => openStream(g, await i.token(AUD_OTHER, { exp: Math.floor(clock / 1000) + 3_600 }))));
    i.fault = { kind: 'status', status: 500 };
    clock += 29_000;
    keys?.maintain(); // stale, still usable: streams go on
    expect(await streams[0]?.endedWithin(200)).toBeUndefined();
    clock += 1_000; // 30 s: fail closed
    keys?.maintain();
    for (const s of streams) expect(await s.endedWithin(2_000)).toMatch(/event: revoked\ndata: \{"reason":"jwks_unavailable"\}\n\n$/);
  });
});
