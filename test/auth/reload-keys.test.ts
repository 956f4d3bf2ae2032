import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { parse, stringify } from 'yaml';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { AUD, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { RPC } from '../helpers/rpc.ts';

// Issue 17 §6: a reload never loses usable keys. The key cache follows the key source (issuer,
// jwksUri); other issuer settings may change during a key-server outage without an empty cache, and a
// new source whose keys are not usable yet is not swapped in while the running one's are.

let idp: TestIdp | undefined;
let other: TestIdp | undefined;
let upstream: TestUpstream | undefined;
let gw: StartedGateway | undefined;
afterEach(async () => {
  await gw?.close();
  await upstream?.close();
  await idp?.close();
  await other?.close();
  gw = undefined;
  other = undefined;
});

async function start(): Promise<{ idp: TestIdp; gw: StartedGateway }> {
  idp = await TestIdp.start();
  upstream = await TestUpstream.start();
  gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri, jwks: { cacheMaxAgeSeconds: 60 } }, upstream.url));
  return { idp, gw };
}

/** Edits the issuer entry of the running config file, then reloads it; resolves with whether it took. */
function reloadWith(g: StartedGateway, edit: (issuer: Record<string, unknown>) => void): Promise<boolean> {
  const doc = parse(readFileSync(g.configFile, 'utf8')) as { issuers: Record<string, unknown>[] };
  edit(doc.issuers[0] as Record<string, unknown>);
  writeFileSync(g.configFile, stringify(doc));
  return g.gateway.reloadFromFile();
}

/** `count` requests, 10 at a time, each with a token never seen before (no verified-cache hit). */
async function statuses(g: StartedGateway, i: TestIdp, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let n = 0; n < count; n += 10) {
    out.push(...await Promise.all(Array.from({ length: 10 }, async (_, k) => {
      const res = await request(`${g.url}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${await i.token(AUD, { jti: `r-${n + k}` })}`, 'content-type': 'application/json' }, body: RPC });
      await res.body.dump();
      return res.statusCode;
    })));
  }
  return out;
}

async function readyz(g: StartedGateway): Promise<number> {
  const res = await request(`${g.adminUrl}/readyz`);
  await res.body.dump();
  return res.statusCode;
}

describe('reload during a key-server outage', () => {
  it('changing issuer settings other than the key source keeps the last good keys: 0 of 200 requests refused, no fetch needed', async () => {
    const { idp: i, gw: g } = await start();
    expect(await statuses(g, i, 10)).toEqual(Array.from({ length: 10 }, () => 200));
    i.fault = { kind: 'status', status: 503 };
    const fetchesBefore = i.jwksRequests;
    const before = g.gateway.issuerKeys.get('idp');
    expect(await reloadWith(g, (iss) => {
      iss['clockSkewSeconds'] = 10;
      iss['maxTokenLifetimeSeconds'] = 7_200;
      iss['jwks'] = { cacheMaxAgeSeconds: 120, staleIfErrorSeconds: 600, cooldownSeconds: 10 };
    })).toBe(true);
    expect(g.gateway.issuerKeys.get('idp')).not.toBe(before); // a new cache, for the new settings...
    expect(g.gateway.issuerKeys.get('idp')?.status()).toMatchObject({ usable: true, keys: 1 }); // ...with the old keys
    expect(g.gateway.config.issuers[0]?.clockSkewSeconds).toBe(10);
    const after = await statuses(g, i, 200);
    expect(after.filter((s) => s !== 200)).toEqual([]);
    expect(await readyz(g)).toBe(200);
    expect(i.jwksRequests).toBe(fetchesBefore); // served from the carried set
  });

  it('a new key source with no usable keys is not swapped in while the running one has them; it is once it answers', async () => {
    const { idp: i, gw: g } = await start();
    expect(await reloadWith(g, (iss) => {
      iss['jwksUri'] = 'http://127.0.0.1:1/jwks'; // nothing listens there
    })).toBe(false);
    expect(g.logs.join('')).toContain('not swapped');
    expect(g.gateway.config.issuers[0]?.jwksUri).toBe(i.jwksUri);
    expect((await statuses(g, i, 50)).filter((s) => s !== 200)).toEqual([]);
    expect(await readyz(g)).toBe(200);

    // The same keys published at another address: a usable new source is swapped in.
    other = await TestIdp.start();
    for (const [kid, key] of i.keys) other.keys.set(kid, key);
    other.published = new Set(i.published);
    expect(await reloadWith(g, (iss) => {
      iss['jwksUri'] = other?.jwksUri;
    })).toBe(true);
    expect(other.jwksRequests).toBe(1);
    expect((await statuses(g, i, 20)).filter((s) => s !== 200)).toEqual([]);
  });
});
