import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { RPC } from '../helpers/rpc.ts';

let idp: TestIdp;
let upstream: TestUpstream;
let gw: StartedGateway;
let clock = 0;
afterEach(async () => {
  await gw?.close();
  await upstream?.close();
  await idp?.close();
});

async function call(token: string): Promise<{ status: number; reason: string | undefined; retryAfter: unknown }> {
  const res = await request(gw.url + '/mcp', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: RPC });
  const text = await res.body.text();
  return { status: res.statusCode, reason: res.statusCode === 200 ? undefined : (JSON.parse(text) as { reason: string }).reason, retryAfter: res.headers['retry-after'] };
}
async function readyz(): Promise<number> {
  const res = await request(gw.adminUrl + '/readyz');
  await res.body.dump();
  return res.statusCode;
}
const tokenAt = (): Promise<string> => {
  const s = Math.floor(clock / 1000);
  return idp.token(AUD, { iat: s, exp: s + 3_600 });
};

describe('key-fetch outage', () => {
  it('serves the last good keys for staleIfErrorSeconds, then fails closed (503, not ready, nothing forwarded), then recovers', async () => {
    clock = Date.now();
    idp = await TestIdp.start();
    upstream = await TestUpstream.start();
    gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri, jwks: { cacheMaxAgeSeconds: 10, staleIfErrorSeconds: 20 } }, upstream.url), { now: () => clock });
    const keys = gw.gateway.issuerKeys.get('idp');
    expect(await readyz()).toBe(200);
    const cachedToken = await tokenAt();
    expect((await call(cachedToken)).status).toBe(200);

    idp.fault = { kind: 'status', status: 500 };
    // Past the fresh lifetime, inside the stale window: last good keys serve, refresh keeps failing.
    clock += 15_000;
    await keys?.refresh();
    expect((await call(await tokenAt())).status).toBe(200);
    clock += 14_000; // 29 s: 1 s left
    await keys?.refresh();
    expect((await call(await tokenAt())).status).toBe(200);
    expect(await readyz()).toBe(200);

    clock += 2_000; // 31 s: the stale window is over
    upstream.reset();
    const refused = await call(await tokenAt());
    expect(refused).toEqual({ status: 503, reason: 'jwks_unavailable', retryAfter: '5' });
    // A token that was verified and cached before is refused too: the cache never outlives the keys.
    expect(await call(cachedToken)).toMatchObject({ status: 503, reason: 'jwks_unavailable' });
    expect(upstream.bytes).toBe(0);
    expect(await readyz()).toBe(503);

    idp.fault = { kind: 'ok' };
    clock += 2_000;
    await keys?.refresh();
    expect(await readyz()).toBe(200);
    expect((await call(await tokenAt())).status).toBe(200);
  });

  it('a 200 with no usable key ({"keys":[]}, no kid, none for the allowed algorithms) is a failed fetch: last good keys serve, the stale window applies, /readyz shows it', async () => {
    clock = Date.now();
    idp = await TestIdp.start();
    upstream = await TestUpstream.start();
    gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'], jwks: { cacheMaxAgeSeconds: 10, staleIfErrorSeconds: 20 } }, upstream.url), { now: () => clock });
    const keys = gw.gateway.issuerKeys.get('idp');
    const k1 = (idp.keys.get('k1') as { publicJwk: Record<string, unknown> }).publicJwk;
    const { kid: _kid, ...noKid } = k1;
    const es = (await idp.addKey('es', 'ES256', false)).publicJwk;
    const bodies = [{ keys: [] }, { keys: [noKid] }, { keys: [es] }];
    const served: number[] = [];
    clock += 15_000; // past the fresh lifetime: every refresh below is the one that would replace k1
    for (const body of bodies) {
      idp.fault = { kind: 'body', body: JSON.stringify(body) };
      await keys?.refresh();
      served.push((await call(await tokenAt())).status);
    }
    expect(served).toEqual([200, 200, 200]); // 0 of 3 lost: k1 still verifies
    expect(keys?.status()).toMatchObject({ usable: true, keys: 1, staleSeconds: 5, lastError: expect.stringMatching(/^no usable signing key for the allowed algorithms /) });
    const ready = await request(gw.adminUrl + '/readyz');
    expect(ready.statusCode).toBe(200);
    // Serving stale keys shows: the alert on mcp_warden_jwks_stale_seconds fires, not a silent 401 wave.
    expect(await ready.body.json()).toMatchObject({ ready: true, issuers: [{ issuer: 'idp', usable: true, keys: 1, staleSeconds: 5 }] });
    const metrics = await (await request(gw.adminUrl + '/metrics')).body.text();
    expect(metrics).toMatch(/mcp_warden_jwks_fetch_total\{issuer="idp",result="no_usable_key"\} 3/);

    clock += 16_000; // 31 s: the stale window is over, still no usable key published
    await keys?.refresh();
    upstream.reset();
    expect(await call(await tokenAt())).toMatchObject({ status: 503, reason: 'jwks_unavailable' });
    expect(upstream.bytes).toBe(0);
    expect(await readyz()).toBe(503);
  });

  it('after an outage, requests arriving while the recovery fetch is in flight wait for it instead of getting 503', async () => {
    clock = Date.now();
    idp = await TestIdp.start();
    upstream = await TestUpstream.start();
    gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri, jwks: { cacheMaxAgeSeconds: 10, staleIfErrorSeconds: 0, timeoutMs: 2_000 } }, upstream.url), { now: () => clock });
    const keys = gw.gateway.issuerKeys.get('idp');
    const cachedToken = await tokenAt();
    expect((await call(cachedToken)).status).toBe(200);
    idp.fault = { kind: 'status', status: 500 };
    clock += 10_001;
    await keys?.refresh(); // the outage: the last attempt failed just now, and the keys are past use
    expect(keys?.usable()).toBe(false);

    idp.fault = { kind: 'slow', ms: 400 };
    const fetchesBefore = idp.jwksRequests;
    const recovery = keys?.refresh(); // the background retry, in flight
    upstream.reset();
    const [fresh, cached] = await Promise.all([call(await tokenAt()), call(cachedToken)]);
    expect(fresh).toMatchObject({ status: 200 });
    expect(cached).toMatchObject({ status: 200 });
    await recovery;
    expect(idp.jwksRequests - fetchesBefore).toBe(1); // they waited for that fetch, not fetched again
    expect(upstream.received).toHaveLength(2);

    // The wait is bounded by the fetch timeout: a recovery fetch that hangs ends in 503, nothing forwarded.
    idp.fault = { kind: 'status', status: 500 };
    clock += 10_001;
    await keys?.refresh();
    idp.fault = { kind: 'hang' };
    const hanging = keys?.refresh();
    upstream.reset();
    const started = Date.now();
    expect(await call(await tokenAt())).toMatchObject({ status: 503, reason: 'jwks_unavailable' });
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(upstream.bytes).toBe(0);
    await hanging;
  }, 15_000);

  it('staleIfErrorSeconds: 0 refuses as soon as the fresh lifetime ends without a successful refresh', async () => {
    clock = Date.now();
    idp = await TestIdp.start();
    upstream = await TestUpstream.start();
    gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri, jwks: { cacheMaxAgeSeconds: 10, staleIfErrorSeconds: 0 } }, upstream.url), { now: () => clock });
    expect((await call(await tokenAt())).status).toBe(200);
    idp.fault = { kind: 'hang' };
    clock += 10_001;
    upstream.reset();
    const started = Date.now();
    expect((await call(await tokenAt())).reason).toBe('jwks_unavailable');
    expect(Date.now() - started).toBeLessThan(7_000); // bounded by timeoutMs (5 s) + 1 s
    expect(upstream.bytes).toBe(0);
  }, 15_000);

  it('starts without reachable keys: up but not ready, refusing every request until the JWKS answers', async () => {
    clock = Date.now();
    idp = await TestIdp.start();
    idp.fault = { kind: 'status', status: 503 };
    upstream = await TestUpstream.start();
    gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url), { now: () => clock });
    expect(await readyz()).toBe(503);
    const health = await request(gw.adminUrl + '/healthz');
    expect(health.statusCode).toBe(200);
    await health.body.dump();
    expect((await call(await tokenAt())).reason).toBe('jwks_unavailable');
    expect(upstream.bytes).toBe(0);
    idp.fault = { kind: 'ok' };
    clock += 2_000; // the first retry comes 1-2 s after the failure (back-off with jitter)
    expect((await call(await tokenAt())).status).toBe(200);
    expect(await readyz()).toBe(200);
  });
});

describe('issuer discovery', () => {
  it('finds jwks_uri in RFC 8414 metadata whose issuer matches exactly', async () => {
    clock = Date.now();
    idp = await TestIdp.start();
    upstream = await TestUpstream.start();
    gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer }, upstream.url), { now: () => clock });
    expect(idp.metadataRequests).toBe(1);
    expect((await call(await tokenAt())).status).toBe(200);
  });

  it('refuses metadata whose issuer differs (RFC 8414 §3.3): no keys, not ready, 503', async () => {
    clock = Date.now();
    idp = await TestIdp.start();
    idp.metadataIssuer = 'https://evil.test';
    upstream = await TestUpstream.start();
    gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer }, upstream.url), { now: () => clock });
    expect(idp.jwksRequests).toBe(0);
    expect(await readyz()).toBe(503);
    expect((await call(await tokenAt())).reason).toBe('jwks_unavailable');
  });
});

describe('discovered jwks_uri on another origin', () => {
  let other: TestIdp | undefined;
  afterEach(async () => {
    await other?.close();
    other = undefined;
  });

  it('refuses a discovered jwks_uri off the issuer\'s origin (another loopback port, scheme or host): no fetch there, 503, nothing forwarded', async () => {
    clock = Date.now();
    idp = await TestIdp.start();
    other = await TestIdp.start();
    upstream = await TestUpstream.start();
    const port = new URL(idp.issuer).port;
    for (const jwksUri of [other.jwksUri, `https://127.0.0.1:${port}/jwks`, `http://localhost:${port}/jwks`, 'https://evil.test/jwks', `http://user@127.0.0.1:${port}/jwks`]) {
      idp.metadataJwksUri = jwksUri;
      gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer }, upstream.url), { now: () => clock });
      expect(idp.metadataRequests, jwksUri).toBeGreaterThan(0);
      expect(await readyz()).toBe(503);
      // A token signed by the other origin's key, claiming our issuer: the keys it names were never trusted.
      const s = Math.floor(clock / 1000);
      upstream.reset();
      expect(await call(await other.token(AUD, { iss: idp.issuer, iat: s, exp: s + 300 })), jwksUri).toMatchObject({ status: 503, reason: 'jwks_unavailable' });
      expect(upstream.received).toHaveLength(0);
      expect(upstream.bytes).toBe(0);
      await gw.close();
    }
    expect(other.jwksRequests).toBe(0);
    expect(idp.jwksRequests).toBe(0);
  });

  it('uses a key set on another origin when the config names it as jwksUri (positive control)', async () => {
    clock = Date.now();
    idp = await TestIdp.start();
    other = await TestIdp.start();
    upstream = await TestUpstream.start();
    gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: other.jwksUri }, upstream.url), { now: () => clock });
    const s = Math.floor(clock / 1000);
    expect((await call(await other.token(AUD, { iss: idp.issuer, iat: s, exp: s + 300 }))).status).toBe(200);
    expect(other.jwksRequests).toBe(1);
    expect(idp.metadataRequests).toBe(0);
  });
});

describe('several issuers on one upstream', () => {
  it('selects the issuer by iss before any key is used; a key of issuer B never verifies a token claiming issuer A', async () => {
    clock = Date.now();
    idp = await TestIdp.start();
    const second = await TestIdp.start({ alg: 'ES256' });
    upstream = await TestUpstream.start();
    try {
      const config = twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url, {
        mcp: { issuers: ['idp', 'second'] },
      });
      (config['issuers'] as unknown[]).push({ name: 'second', issuer: second.issuer, jwksUri: second.jwksUri, algorithms: ['ES256'] });
      gw = await startGateway(config, { now: () => clock });
      const s = Math.floor(clock / 1000);
      expect((await call(await idp.token(AUD, { iat: s, exp: s + 300 }))).status).toBe(200);
      expect((await call(await second.token(AUD, { iat: s, exp: s + 300 }))).status).toBe(200);
      // Issuer B's key, issuer A's name: only A's JWKS is consulted, where B's kid does not exist.
      const forged = await second.sign({ iss: idp.issuer, aud: AUD, sub: 'x', iat: s, exp: s + 300 }, { kid: 'k1' });
      expect((await call(forged)).status).toBe(401);
      // An issuer not listed for the upstream.
      const unlisted = await second.sign({ iss: 'https://unlisted.test', aud: AUD, sub: 'x', iat: s, exp: s + 300 });
      expect(await call(unlisted)).toMatchObject({ status: 401, reason: 'iss_unknown' });
    } finally {
      await second.close();
    }
  });
});
