import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { AUD, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { TestIdp } from '../helpers/idp.ts';
import { TestRedis } from '../helpers/redis.ts';
import { MCP_POST_HEADERS } from '../helpers/rpc.ts';
import { TestUpstream } from '../helpers/upstream.ts';

// Two gateway instances, each with its own Redis client, in front of one real redis-server: one quota
// shared exactly; then Redis is killed mid-run and each falls back to its share (limit / replicas).

let idp: TestIdp;
let upstream: TestUpstream;
let redis: TestRedis;
let gws: StartedGateway[] = [];

beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = await TestUpstream.start();
  redis = await TestRedis.start();
  const config = twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url, {
    mcp: {
      rateLimits: [
        { name: 'deletes', tool: 'delete_*', quota: 6, windowSeconds: 3600 },
        { name: 'calls', method: 'tools/list', rate: 4, perSeconds: 60 },
      ],
    },
    root: { rateLimitStore: { redis: { url: redis.url, keyPrefix: `test-${process.pid}:`, timeoutMs: 200, replicas: 2 } } },
  });
  gws = [await startGateway(config), await startGateway(config)];
  await Promise.all(gws.map((gw) => waitForMode(gw, 'shared')));
});

afterAll(async () => {
  for (const gw of gws) await gw.close();
  await redis?.kill();
  await upstream?.close();
  await idp?.close();
});

async function readiness(gw: StartedGateway): Promise<{ rateLimits?: { mode?: string; store?: string; replicas?: number } }> {
  return (await (await request(`${gw.adminUrl}/readyz`)).body.json()) as { rateLimits?: { mode?: string } };
}

/** Polls /readyz (bounded: 10 s) until the rate-limit store reports `mode`. */
async function waitForMode(gw: StartedGateway, mode: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await readiness(gw)).rateLimits?.mode !== mode) {
    if (Date.now() > deadline) throw new Error(`rate-limit store never reached mode ${mode}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function post(gw: StartedGateway, token: string, body: unknown): Promise<{ status: number; retryAfter: string | undefined; reason: string | undefined }> {
  const res = await request(`${gw.url}/mcp`, { method: 'POST', headers: { ...MCP_POST_HEADERS, authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  const answer = JSON.parse(await res.body.text()) as { error?: { data?: { reason?: string } } };
  const retryAfter = res.headers['retry-after'];
  return { status: res.statusCode, retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined, reason: answer.error?.data?.reason };
}

const del = (id: number): unknown => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'delete_repo', arguments: {} } });
const list = (id: number): unknown => ({ jsonrpc: '2.0', id, method: 'tools/list' });
const metric = async (gw: StartedGateway, name: string): Promise<number> => {
  const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
};

describe('shared rate limits in Redis', () => {
  it('two gateways with their own clients share one quota exactly, even for calls at the same moment', async () => {
    const token = await idp.token(AUD, { sub: 'shared-alice' });
    const before = upstream.received.length;
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => post(gws[i % 2] as StartedGateway, token, del(i))));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(6);
    const refused = answers.filter((a) => a.status !== 200);
    expect(refused).toHaveLength(14);
    for (const r of refused) {
      expect(r).toMatchObject({ status: 429, reason: 'rate_limited' });
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(r.retryAfter)).toBeLessThanOrEqual(3600);
    }
    expect(upstream.received.length - before).toBe(6); // the refused calls never reached the upstream
    expect(await readiness(gws[0] as StartedGateway)).toMatchObject({ rateLimits: { store: 'redis', mode: 'shared', replicas: 2 } });
    expect(await metric(gws[0] as StartedGateway, 'mcp_warden_rate_limit_fallback')).toBe(0);
  });

  it('a token bucket spent on one gateway is empty on the other', async () => {
    const token = await idp.token(AUD, { sub: 'shared-bob' });
    const [a, b] = gws as [StartedGateway, StartedGateway];
    for (let i = 0; i < 4; i++) expect((await post(a, token, list(i))).status).toBe(200);
    const refused = await post(b, token, list(9));
    expect(refused).toMatchObject({ status: 429, reason: 'rate_limited', retryAfter: '15' }); // 4 per minute
  });

  it('a hung Redis (connections open, no answers) falls back after timeoutMs, and only one call a second waits for it', async () => {
    const [a] = gws as [StartedGateway];
    const token = await idp.token(AUD, { sub: 'shared-erin' });
    redis.pause(true);
    try {
      const timed = async (): Promise<{ status: number; ms: number }> => {
        const t0 = Date.now();
        const r = await post(a, token, del(1));
        return { status: r.status, ms: Date.now() - t0 };
      };
      const first = await timed();
      expect(first.status).toBe(200);
      expect(first.ms).toBeGreaterThanOrEqual(150); // timeoutMs 200: it waited for the store
      expect(first.ms).toBeLessThan(2_000);
      const second = await timed();
      expect(second.ms).toBeLessThan(150); // within the second after a failure: local at once
      expect(await readiness(a)).toMatchObject({ rateLimits: { mode: 'fallback' } });
    } finally {
      redis.pause(false);
    }
    await new Promise((r) => setTimeout(r, 1_100));
    await post(a, token, del(2)); // the next check after the pause asks Redis again
    await waitForMode(a, 'shared');
  });

  it('with Redis killed mid-run each gateway enforces limit / replicas locally, says so in /readyz and a metric, and returns to shared when Redis is back', async () => {
    const [a, b] = gws as [StartedGateway, StartedGateway];
    await redis.kill();
    const token = await idp.token(AUD, { sub: 'shared-carol' });
    // The first call may still find the old connection: its failure falls back as well.
    const onA = [];
    for (let i = 0; i < 5; i++) onA.push((await post(a, token, del(i))).status);
    expect(onA).toEqual([200, 200, 200, 429, 429]); // quota 6 / 2 replicas: 3 here, never unlimited
    const onB = [];
    for (let i = 0; i < 4; i++) onB.push((await post(b, token, del(i))).status);
    expect(onB).toEqual([200, 200, 200, 429]);
    await waitForMode(a, 'fallback');
    expect(await readiness(a)).toMatchObject({ ready: true, rateLimits: { store: 'redis', mode: 'fallback', replicas: 2 } });
    expect(await metric(a, 'mcp_warden_rate_limit_fallback')).toBe(1);
    expect(await metric(a, 'mcp_warden_rate_limit_fallback_checks_total')).toBeGreaterThanOrEqual(5);
    expect(a.logs.some((l) => l.includes('"event":"rate_limit_store"') && l.includes('"mode":"fallback"'))).toBe(true);
    expect(a.logs.join('')).not.toContain(redis.url);

    await redis.restart();
    await Promise.all([waitForMode(a, 'shared'), waitForMode(b, 'shared')]);
    expect(await metric(a, 'mcp_warden_rate_limit_fallback')).toBe(0);
    // The restarted store is empty (no persistence): the shared quota starts afresh, shared again.
    const dave = await idp.token(AUD, { sub: 'shared-dave' });
    const statuses = [];
    for (let i = 0; i < 8; i++) statuses.push((await post(gws[i % 2] as StartedGateway, dave, del(i))).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 429, 429]);
  });
});
