import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { stringify, parse } from 'yaml';
import { TestIdp } from '../helpers/idp.ts';
import { RPC } from '../helpers/rpc.ts';
import { makePki } from '../helpers/certs.ts';
import { AUD, AUD_OTHER, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { postTo } from '../helpers/http.ts';
import type { Reply } from '../helpers/wire.ts';

const fx = useGatewayFixture({ overrides: (upstreamUrl) => ({ other: { target: `${upstreamUrl}/sse` } }) });

const post = (token: string, path = '/mcp', headers: Record<string, string> = {}): Promise<Reply> => postTo(fx.gw.url + path, token, { headers });
async function metrics(g: StartedGateway = fx.gw): Promise<string> {
  const res = await request(g.adminUrl + '/metrics');
  expect(res.statusCode).toBe(200);
  return res.body.text();
}
function metric(text: string, line: string): number | undefined {
  const found = text.split('\n').find((l) => l.startsWith(line + ' '));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

describe('metrics', () => {
  it('counts allowed and denied requests with bounded labels, key state, cache and both duration phases', async () => {
    const good = await fx.idp.token(AUD, { sub: 'metric-subject' });
    expect((await post(good)).status).toBe(200);
    expect((await post(good)).status).toBe(200);
    expect((await post(await fx.idp.token(AUD_OTHER), '/mcp')).status).toBe(401);
    const text = await metrics();
    expect(metric(text, 'mcp_warden_requests_total{upstream="mcp",method="tools/list",outcome="allow",reason="none"}')).toBe(2);
    expect(metric(text, 'mcp_warden_requests_total{upstream="mcp",method="none",outcome="deny",reason="aud_mismatch"}')).toBe(1);
    expect(metric(text, 'mcp_warden_jwks_fetch_total{issuer="idp",result="ok"}')).toBeGreaterThanOrEqual(1);
    expect(metric(text, 'mcp_warden_jwks_keys{issuer="idp"}')).toBe(1);
    expect(metric(text, 'mcp_warden_jwks_stale_seconds{issuer="idp"}')).toBe(0);
    expect(metric(text, 'mcp_warden_token_cache_hits_total')).toBeGreaterThanOrEqual(1);
    expect(metric(text, 'mcp_warden_token_cache_misses_total')).toBeGreaterThanOrEqual(2);
    expect(metric(text, 'mcp_warden_request_duration_seconds_count{upstream="mcp",phase="gateway"}')).toBeGreaterThanOrEqual(2);
    expect(metric(text, 'mcp_warden_request_duration_seconds_count{upstream="mcp",phase="upstream"}')).toBeGreaterThanOrEqual(2);
    expect(metric(text, 'mcp_warden_config_reloads_total{result="failure"}')).toBe(0);
    expect(text).toContain('mcp_warden_process_resident_memory_bytes');
    // Never a subject, a token or a raw path as a label value.
    expect(text).not.toContain('metric-subject');
    expect(text).not.toContain('eyJ');
    expect(text).not.toContain('/mcp');
  });

  it('counts JWKS failures and the refusals they cause', async () => {
    const down = await TestIdp.start();
    down.fault = { kind: 'status', status: 500 };
    const g = await startGateway(twoUpstreamConfig({ issuer: down.issuer, jwksUri: down.jwksUri }, fx.upstream.url));
    try {
      const res = await request(g.url + '/mcp', { method: 'POST', headers: { authorization: `Bearer ${await down.token(AUD)}`, 'content-type': 'application/json' }, body: RPC });
      expect(res.statusCode).toBe(503);
      await res.body.dump();
      const text = await metrics(g);
      expect(metric(text, 'mcp_warden_jwks_fetch_total{issuer="idp",result="status"}')).toBeGreaterThanOrEqual(1);
      expect(metric(text, 'mcp_warden_requests_total{upstream="mcp",method="none",outcome="deny",reason="jwks_unavailable"}')).toBe(1);
    } finally {
      await g.close();
      await down.close();
    }
  });

  it('tracks open SSE streams per upstream', async () => {
    fx.upstream.sseEvents = 2;
    let release: () => void = () => undefined;
    fx.upstream.sseGate = (i) => (i === 1 ? new Promise<void>((r) => (release = r)) : Promise.resolve());
    const res = await request(fx.gw.url + '/other-mcp', { method: 'GET', headers: { authorization: `Bearer ${await fx.idp.token(AUD_OTHER)}`, accept: 'text/event-stream' } });
    const events = res.body[Symbol.asyncIterator]();
    await events.next();
    expect(metric(await metrics(), 'mcp_warden_active_streams{upstream="other"}')).toBe(1);
    release();
    while (!(await events.next()).done);
    await new Promise((r) => setTimeout(r, 50));
    expect(metric(await metrics(), 'mcp_warden_active_streams{upstream="other"}')).toBe(0);
    fx.upstream.sseGate = undefined;
  });
});

describe('logs', () => {
  it('one audit line per decision with request id and traceparent; no token, cookie or assertion anywhere', async () => {
    const token = await fx.idp.token(AUD, { sub: 'log-subject' });
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const ok = await post(token, '/mcp', { 'x-request-id': 'req-123', traceparent, cookie: 'session=secret-cookie' });
    expect(ok.headers['x-request-id']).toBe('req-123');
    expect(fx.upstream.last()?.headers.get('traceparent')).toEqual([traceparent]);
    expect(fx.upstream.last()?.headers.has('cookie')).toBe(false);
    expect(fx.upstream.last()?.headers.get('x-request-id')).toEqual(['req-123']);
    const generated = await post(await fx.idp.token(AUD_OTHER), '/mcp');
    expect(String(generated.headers['x-request-id'])).toMatch(/^[0-9a-f-]{36}$/);
    const lines = fx.gw.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const line = lines.find((l) => l['requestId'] === 'req-123');
    expect(lines.filter((l) => l['requestId'] === 'req-123' && l['event'] === 'decision')).toHaveLength(1);
    expect(line).toMatchObject({ event: 'decision', decision: 'allow', upstream: 'mcp', sub: 'log-subject', clientId: 'test-client', rpcMethod: 'tools/list', traceparent, status: 200 });
    expect(lines.find((l) => l['requestId'] === String(generated.headers['x-request-id']))).toMatchObject({ decision: 'deny', reason: 'aud_mismatch' });
    const all = fx.gw.logs.join('\n');
    const assertion = fx.upstream.received.find((r) => r.headers.get('x-request-id')?.[0] === 'req-123')?.headers.get('x-mcp-identity')?.[0] as string;
    for (const secret of [token, token.split('.')[2] as string, 'secret-cookie', assertion, assertion.split('.')[2] as string]) expect(all).not.toContain(secret);
  });
});

describe('hot reload', () => {
  it('applies a good new policy atomically; a bad one keeps the old policy serving and counts the failure', async () => {
    const g = await startGateway(twoUpstreamConfig({ issuer: fx.idp.issuer, jwksUri: fx.idp.jwksUri }, fx.upstream.url));
    try {
      const call = async (): Promise<number> => {
        const res = await request(g.url + '/mcp', { method: 'POST', headers: { authorization: `Bearer ${await fx.idp.token(AUD, { scope: 'mcp:tools' })}`, 'content-type': 'application/json' }, body: RPC });
        await res.body.dump();
        return res.statusCode;
      };
      expect(await call()).toBe(200);
      const original = readFileSync(g.configFile, 'utf8');
      const doc = parse(original) as { upstreams: { scopes: string[] }[] };
      (doc.upstreams[0] as { scopes: string[] }).scopes = ['mcp:tools', 'mcp:new'];
      writeFileSync(g.configFile, stringify(doc));
      expect(await g.gateway.reloadFromFile()).toBe(true);
      expect(await call()).toBe(403);

      writeFileSync(g.configFile, original.replace('algorithms:', 'algorithms: [HS256]\n    bogus:'));
      expect(await g.gateway.reloadFromFile()).toBe(false);
      expect(await call()).toBe(403); // still the last good policy
      const text = await metrics(g);
      expect(metric(text, 'mcp_warden_config_reloads_total{result="success"}')).toBe(1);
      expect(metric(text, 'mcp_warden_config_reloads_total{result="failure"}')).toBe(1);
      expect(g.logs.some((l) => l.includes('config_reload_failed'))).toBe(true);
    } finally {
      await g.close();
    }
  });
});

describe('graceful shutdown', () => {
  it('ends an open SSE stream with a final event at an event boundary, then stops', async () => {
    const g = await startGateway(twoUpstreamConfig({ issuer: fx.idp.issuer, jwksUri: fx.idp.jwksUri }, fx.upstream.url, { other: { target: `${fx.upstream.url}/sse` } }));
    fx.upstream.sseEvents = 10;
    fx.upstream.sseGate = (i) => (i >= 2 ? new Promise<void>(() => undefined) : Promise.resolve());
    const res = await request(g.url + '/other-mcp', { method: 'GET', headers: { authorization: `Bearer ${await fx.idp.token(AUD_OTHER)}`, accept: 'text/event-stream' } });
    const reader = res.body[Symbol.asyncIterator]();
    let text = String((await reader.next()).value);
    const stopping = g.gateway.shutdown(2_000);
    for (let r = await reader.next(); !r.done; r = await reader.next()) text += String(r.value);
    await stopping;
    expect(text).toMatch(/data: \{"n":0\}\n\n(id: 1\.[A-Za-z0-9_-]{22}\ndata: \{"n":1\}\n\n)?event: shutdown\nretry: 1000\ndata: \{"reason":"gateway shutting down"\}\n\n$/);
    expect(g.gateway.ready()).toBe(false);
    await expect(request(g.url + '/mcp', { method: 'GET' })).rejects.toThrow();
    fx.upstream.sseGate = undefined;
    rmSync(dirname(g.configFile), { recursive: true, force: true }); // shut down already: no g.close()
  });
});

describe('TLS', () => {
  const pki = makePki();
  afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));
  it('serves the traffic listener over TLS', async () => {
    const g = await startGateway(twoUpstreamConfig({ issuer: fx.idp.issuer, jwksUri: fx.idp.jwksUri }, fx.upstream.url, {
      root: { listen: { host: '127.0.0.1', port: 0, tls: { certFile: pki.serverCert, keyFile: pki.serverKey } } },
    }));
    try {
      const dispatcher = new Agent({ connect: { ca: readFileSync(pki.ca) } });
      const url = g.url.replace('http:', 'https:');
      const res = await request(url + '/mcp', { method: 'POST', dispatcher, headers: { authorization: `Bearer ${await fx.idp.token(AUD)}`, 'content-type': 'application/json' }, body: RPC });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      await dispatcher.close();
    } finally {
      await g.close();
    }
  });

  it('talks to an upstream over mutual TLS; without the client certificate the upstream refuses', async () => {
    const seen: (string | undefined)[] = [];
    const tlsUpstream: Server = createHttpsServer({ cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey), ca: readFileSync(pki.ca), requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const cert = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
      seen.push(String(cert.subject?.CN));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{}}');
    });
    await new Promise<void>((r) => tlsUpstream.listen(0, '127.0.0.1', r));
    const target = `https://127.0.0.1:${(tlsUpstream.address() as AddressInfo).port}/mcp`;
    const g = await startGateway(twoUpstreamConfig({ issuer: fx.idp.issuer, jwksUri: fx.idp.jwksUri }, fx.upstream.url, {
      mcp: { target, tls: { caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey } },
      other: { target, tls: { caFile: pki.ca } },
    }));
    try {
      const mtls = await request(g.url + '/mcp', { method: 'POST', headers: { authorization: `Bearer ${await fx.idp.token(AUD)}`, 'content-type': 'application/json' }, body: RPC });
      expect(mtls.statusCode).toBe(200);
      await mtls.body.dump();
      expect(seen).toEqual(['client']);
      const noCert = await request(g.url + '/other-mcp', { method: 'POST', headers: { authorization: `Bearer ${await fx.idp.token(AUD_OTHER)}`, 'content-type': 'application/json' }, body: RPC });
      expect(noCert.statusCode).toBe(502);
      await noCert.body.dump();
    } finally {
      await g.close();
      tlsUpstream.closeAllConnections();
      await new Promise<void>((r) => tlsUpstream.close(() => r()));
    }
  });
});
