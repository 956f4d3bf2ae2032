import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { decodeJwt } from 'jose';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { RPC } from '../helpers/rpc.ts';

const ISSUER = 'http://127.0.0.1:1/as'; // never contacted: introspection issuers have no JWKS
let answers: Map<string, Record<string, unknown> | 'down' | { raw: string }>;
let calls: { authorization: string | undefined; body: string }[];
let server: Server;
let endpoint: string;
let upstream: TestUpstream;
let gw: StartedGateway;
let clock = Date.now();
const nowS = (): number => Math.floor(clock / 1000);

beforeAll(async () => {
  answers = new Map();
  calls = [];
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      calls.push({ authorization: req.headers.authorization, body });
      // RFC 7662 §2.1: the endpoint requires the resource server to authenticate.
      if (req.headers.authorization !== `Basic ${Buffer.from('gateway:s3cret').toString('base64')}`) {
        res.writeHead(401).end();
        return;
      }
      const token = new URLSearchParams(body).get('token') ?? '';
      const answer = answers.get(token) ?? { active: false };
      if (answer === 'down') {
        res.writeHead(500).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('raw' in answer ? answer.raw : JSON.stringify(answer));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`;
  upstream = await TestUpstream.start();
  gw = await startGateway(twoUpstreamConfig(
    { issuer: ISSUER, algorithms: undefined, introspection: { endpoint, clientId: 'gateway', clientSecret: 's3cret', cacheTtlSeconds: 30, timeoutMs: 1_000 } },
    upstream.url,
  ), { now: () => clock });
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

async function call(token: string): Promise<{ status: number; reason: string | undefined }> {
  const res = await request(gw.url + '/mcp', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: RPC });
  const text = await res.body.text();
  return { status: res.statusCode, reason: res.statusCode === 200 ? undefined : (JSON.parse(text) as { reason: string }).reason };
}
const active = (extra: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ active: true, iss: ISSUER, aud: AUD, sub: 'opaque-user', client_id: 'cli', scope: 'mcp:tools', exp: nowS() + 600, ...extra });

describe('RFC 7662 introspection for opaque tokens', () => {
  it('accepts an active token for this audience; the gateway authenticates itself, the assertion carries the subject', async () => {
    answers.set('opaque-good', active());
    upstream.reset();
    calls.length = 0;
    expect(await call('opaque-good')).toEqual({ status: 200, reason: undefined });
    expect(calls).toHaveLength(1);
    expect(calls[0]?.body).toBe('token=opaque-good&token_type_hint=access_token');
    expect(calls[0]?.authorization).toMatch(/^Basic /);
    const assertion = upstream.last()?.headers.get('x-mcp-identity')?.[0] as string;
    expect(decodeJwt(assertion)).toMatchObject({ sub: 'opaque-user', client_id: 'cli', aud: AUD });
    expect(upstream.last()?.headers.has('authorization')).toBe(false);
  });

  it('refuses inactive, wrong-audience, audience-less, expired and wrong-issuer answers with 401', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['opaque-inactive', { active: false }, 'token_inactive'],
      ['opaque-active-string', active({ active: 'true' }), 'token_inactive'],
      ['opaque-other-aud', active({ aud: 'https://gw.test/other-mcp' }), 'aud_mismatch'],
      ['opaque-no-aud', active({ aud: undefined }), 'aud_mismatch'],
      ['opaque-expired', active({ exp: nowS() - 120 }), 'token_expired'],
      ['opaque-no-exp', active({ exp: undefined }), 'claims_invalid'],
      ['opaque-wrong-iss', active({ iss: 'https://evil.test' }), 'iss_unknown'],
      ['opaque-no-sub', active({ sub: undefined }), 'claims_invalid'],
    ];
    upstream.reset();
    for (const [token, answer, reason] of cases) {
      answers.set(token, answer);
      expect(await call(token)).toEqual({ status: 401, reason });
    }
    expect(upstream.bytes).toBe(0);
  });

  it('builds the principal with the same claim checks as a JWT: sub length, client_id, scope types, jti (nothing forwarded)', async () => {
    const cases: [string, Record<string, unknown>][] = [
      ['opaque-long-sub', active({ sub: 'a'.repeat(1025) })],
      ['opaque-object-sub', active({ sub: { id: 'admin' } })],
      ['opaque-empty-sub', active({ sub: '' })],
      ['opaque-empty-client', active({ client_id: '' })],
      ['opaque-number-client', active({ client_id: 7 })],
      ['opaque-empty-azp', active({ client_id: undefined, azp: '' })],
      ['opaque-array-scope', active({ scope: ['mcp:tools'] })],
      ['opaque-number-scope', active({ scope: 42 })],
      ['opaque-number-jti', active({ jti: 42 })],
    ];
    upstream.reset();
    for (const [token, answer] of cases) {
      answers.set(token, answer);
      expect(await call(token), token).toEqual({ status: 401, reason: 'claims_invalid' });
    }
    expect(upstream.received).toHaveLength(0);
    expect(upstream.bytes).toBe(0);
    // Positive controls at the limits: a 1024-character sub, and username standing in for an absent sub.
    answers.set('opaque-max-sub', active({ sub: 'a'.repeat(1024) }));
    expect(await call('opaque-max-sub')).toEqual({ status: 200, reason: undefined });
    answers.set('opaque-username', active({ sub: undefined, username: 'bob' }));
    expect(await call('opaque-username')).toEqual({ status: 200, reason: undefined });
    expect(decodeJwt(upstream.last()?.headers.get('x-mcp-identity')?.[0] as string)).toMatchObject({ sub: 'bob' });
  });

  it('judges the time claims of an answer like a JWT: finite NumericDates, iat not ahead, at most 24 h of lifetime', async () => {
    const n = nowS();
    const raw = (times: string): { raw: string } => ({ raw: `{"active":true,"iss":"${ISSUER}","aud":"${AUD}","sub":"u","scope":"mcp:tools",${times}}` });
    const cases: [string, Record<string, unknown> | { raw: string }, string][] = [
      ['opaque-exp-inf', raw('"exp":1e309'), 'claims_invalid'],
      ['opaque-exp-neg', raw('"exp":-1e309'), 'claims_invalid'],
      ['opaque-nbf-neg', active({ nbf: -1 }), 'claims_invalid'],
      ['opaque-iat-string', active({ iat: String(n) }), 'claims_invalid'],
      ['opaque-iat-future', active({ iat: n + 31 }), 'token_not_yet_valid'],
      ['opaque-long-life', active({ iat: n, exp: n + 86_401 }), 'token_lifetime_exceeded'],
      ['opaque-no-iat-long', active({ exp: n + 86_400 + 31 }), 'token_lifetime_exceeded'],
      ['opaque-exp-ms', active({ iat: n, exp: (n + 600) * 1000 }), 'token_lifetime_exceeded'],
    ];
    upstream.reset();
    for (const [token, answer, reason] of cases) {
      answers.set(token, answer);
      expect(await call(token), token).toEqual({ status: 401, reason });
    }
    expect(upstream.received).toHaveLength(0);
    expect(upstream.bytes).toBe(0);
    answers.set('opaque-day', active({ iat: n, exp: n + 86_400 }));
    expect(await call('opaque-day')).toEqual({ status: 200, reason: undefined });
  });

  it('checks scopes from the introspection answer (403 without the upstream scope)', async () => {
    answers.set('opaque-noscope', active({ scope: 'openid' }));
    expect(await call('opaque-noscope')).toEqual({ status: 403, reason: 'insufficient_scope' });
  });

  it('fails closed with 503 when introspection is down, never accepting on error', async () => {
    answers.set('opaque-down', 'down');
    upstream.reset();
    expect(await call('opaque-down')).toEqual({ status: 503, reason: 'introspection_unavailable' });
    expect(upstream.bytes).toBe(0);
  });

  it('logs an introspection outage once, with the issuer, endpoint URL and status, then its recovery once (issue 24 §1)', async () => {
    answers.set('opaque-down-2', 'down');
    answers.set('opaque-back', active());
    const events = (): Array<Record<string, unknown>> => gw.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['event'] === 'introspection');
    const before = events().length;
    expect((await call('opaque-down-2')).status).toBe(503);
    expect((await call('opaque-down-2')).status).toBe(503);
    expect((await call('opaque-back')).status).toBe(200);
    const seen = events().slice(before);
    expect(seen.filter((l) => l['result'] === 'status')).toHaveLength(before === 0 ? 1 : 0);
    expect(seen.at(-1)).toMatchObject({ issuer: 'idp', result: 'ok' });
    const failure = events().find((l) => l['result'] === 'status');
    expect(failure).toMatchObject({ issuer: 'idp', result: 'status', status: 500, url: endpoint, error: 'status 500' });
    expect(JSON.stringify(events())).not.toContain('s3cret');
  });

  it('caches an answer for at most cacheTtlSeconds, and never past the token exp', async () => {
    answers.set('opaque-cached', active());
    calls.length = 0;
    expect((await call('opaque-cached')).status).toBe(200);
    expect((await call('opaque-cached')).status).toBe(200);
    expect(calls).toHaveLength(1);
    clock += 31_000;
    expect((await call('opaque-cached')).status).toBe(200);
    expect(calls).toHaveLength(2);

    answers.set('opaque-short', active({ exp: nowS() + 5 }));
    calls.length = 0;
    expect((await call('opaque-short')).status).toBe(200);
    clock += 6_000;
    answers.set('opaque-short', { active: false }); // revoked meanwhile
    expect(await call('opaque-short')).toEqual({ status: 401, reason: 'token_inactive' });
    expect(calls).toHaveLength(2);
  });
});
