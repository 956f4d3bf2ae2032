import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { TestIdp } from '../helpers/idp.ts';
import { RPC } from '../helpers/rpc.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, startGateway, twoUpstreamConfig, type StartedGateway, type IssuerSpec } from '../helpers/gateway.ts';

// Issue 24 §1: the glewlwyd findings, each reproduced with a test IdP that behaves the same way. Every
// failure is one log line with issuer, URL, status or error and the precise cause, and /readyz names
// the issuer that has no usable key, and why.

let upstream: TestUpstream;
beforeAll(async () => {
  upstream = await TestUpstream.start();
});
afterAll(async () => {
  await upstream.close();
});

interface LogLine {
  readonly event?: string;
  readonly issuer?: string;
  readonly result?: string;
  readonly error?: string;
  readonly url?: string;
  readonly status?: number;
  readonly msg?: string;
}
const lines = (g: StartedGateway, event: string): LogLine[] => g.logs.map((l) => JSON.parse(l) as LogLine).filter((l) => l.event === event);

async function readyz(g: StartedGateway): Promise<{ status: number; body: { ready: boolean; issuers: Array<Record<string, unknown>> } }> {
  const res = await request(g.adminUrl + '/readyz');
  return { status: res.statusCode, body: (await res.body.json()) as { ready: boolean; issuers: Array<Record<string, unknown>> } };
}

async function withGateway(idp: TestIdp, issuer: IssuerSpec, run: (g: StartedGateway) => Promise<void>): Promise<void> {
  const g = await startGateway(twoUpstreamConfig(issuer, upstream.url));
  try {
    await run(g);
  } finally {
    await g.close();
    await idp.close();
  }
}

describe('key-fetch failures explain themselves (issue 24 §1)', () => {
  it('a configured issuer with a trailing slash logs the metadata issuer mismatch with both values and the metadata URL, and /readyz names it', async () => {
    const idp = await TestIdp.start();
    await withGateway(idp, { issuer: `${idp.issuer}/` }, async (g) => {
      const [line, ...more] = lines(g, 'jwks_fetch');
      expect(more).toEqual([]);
      expect(line).toMatchObject({ issuer: 'idp', result: 'metadata', url: `${idp.issuer}/.well-known/oauth-authorization-server` });
      expect(line?.error).toContain('metadata issuer does not match the configured issuer');
      expect(line?.error).toContain(`metadata "${idp.issuer}", configured "${idp.issuer}/"`);
      expect(idp.jwksRequests).toBe(0);
      const r = await readyz(g);
      expect(r.status).toBe(503);
      expect(r.body.ready).toBe(false);
      expect(r.body.issuers).toEqual([expect.objectContaining({ issuer: 'idp', usable: false, keys: 0, reason: expect.objectContaining({ result: 'metadata', url: line?.url, error: line?.error }) })]);
    });
  });

  it('a wrong jwksUri logs the URL and the HTTP status, and the request is refused 503 without reaching the upstream', async () => {
    const idp = await TestIdp.start();
    const before = upstream.received.length;
    await withGateway(idp, { issuer: idp.issuer, jwksUri: `${idp.issuer}/wrong/jwks` }, async (g) => {
      expect(lines(g, 'jwks_fetch')).toEqual([expect.objectContaining({ issuer: 'idp', result: 'status', status: 404, url: `${idp.issuer}/wrong/jwks`, error: 'status 404' })]);
      const res = await request(g.url + '/mcp', { method: 'POST', headers: { authorization: `Bearer ${await idp.token(AUD)}`, 'content-type': 'application/json' }, body: RPC });
      expect(res.statusCode).toBe(503);
      await res.body.dump();
      expect(upstream.received.length).toBe(before);
      const r = await readyz(g);
      expect(r.status).toBe(503);
      expect(r.body.issuers[0]).toMatchObject({ issuer: 'idp', usable: false, reason: { result: 'status', status: 404, url: `${idp.issuer}/wrong/jwks` } });
    });
  });

  it('an IdP publishing only ES256 keys against an RS256 allow-list is not ready, and says which algorithms were allowed and published', async () => {
    const idp = await TestIdp.start({ alg: 'ES256' });
    await withGateway(idp, { issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'] }, async (g) => {
      const [line] = lines(g, 'jwks_fetch');
      expect(line).toMatchObject({ issuer: 'idp', result: 'no_usable_key', url: idp.jwksUri });
      expect(line?.error).toBe('no usable signing key for the allowed algorithms RS256 (the set has 1 key(s), for: ES256)');
      const r = await readyz(g);
      expect(r.status).toBe(503);
      expect(r.body.issuers[0]).toMatchObject({ issuer: 'idp', usable: false, keys: 0, reason: { result: 'no_usable_key', error: line?.error } });
    });
  });

  it('an ES256 key published without alg is no key for an RS256 allow-list either', async () => {
    const idp = await TestIdp.start({ alg: 'ES256' });
    const key = idp.keys.get('k1');
    delete (key?.publicJwk as { alg?: string }).alg;
    await withGateway(idp, { issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'] }, async (g) => {
      expect(lines(g, 'jwks_fetch')[0]).toMatchObject({ result: 'no_usable_key', error: expect.stringContaining('for: ES256') });
      expect((await readyz(g)).status).toBe(503);
    });
  });

  it('logs once per state change: repeated identical failures are one line, a new cause or recovery is a new line', async () => {
    const idp = await TestIdp.start();
    idp.fault = { kind: 'status', status: 500 };
    await withGateway(idp, { issuer: idp.issuer, jwksUri: idp.jwksUri }, async (g) => {
      const keys = g.gateway.issuerKeys.get('idp');
      await keys?.refresh();
      await keys?.refresh();
      expect(idp.jwksRequests).toBe(3);
      expect(lines(g, 'jwks_fetch')).toHaveLength(1);
      idp.fault = { kind: 'status', status: 502 };
      await keys?.refresh();
      idp.fault = { kind: 'ok' };
      await keys?.refresh();
      await keys?.refresh();
      expect(lines(g, 'jwks_fetch').map((l) => [l.result, l.status])).toEqual([['status', 500], ['status', 502], ['ok', undefined]]);
      const r = await readyz(g);
      expect(r.status).toBe(200);
      expect(r.body.issuers[0]).not.toHaveProperty('reason');
    });
  });
});
