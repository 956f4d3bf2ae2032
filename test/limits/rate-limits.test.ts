import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { loadConfigText } from '../../src/config/compile.ts';
import { ConfigError, type ConfigProblem } from '../../src/config/errors.ts';
import { AUD, PUBLIC_URL } from '../helpers/gateway.ts';
import { useGatewayFixture } from '../helpers/fixture.ts';
import { MCP_POST_HEADERS } from '../helpers/rpc.ts';

// Rate limits and quotas end to end through the real gateway, on the gateway's injected clock: the
// test moves time forward instead of sleeping.

let offsetMs = 0;
const fx = useGatewayFixture({
  now: () => Date.now() + offsetMs,
  overrides: () => ({
    mcp: {
      tools: [{ name: 'forbidden_*', deny: true }],
      rateLimits: [
        { name: 'calls', rate: 3, perSeconds: 10 }, // burst defaults to the rate
        { name: 'deletes', tool: 'delete_*', quota: 2, windowSeconds: 3600 },
        { name: 'tenant', claim: 'tenant', method: 'prompts/*', rate: 2, perSeconds: 60 },
      ],
    },
  }),
});

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: { id?: unknown; error?: { code?: number; data?: { reason?: string } } } & Record<string, unknown>;
}

async function post(token: string, body: unknown, version = '2025-06-18'): Promise<Answer> {
  const res = await request(`${fx.gw.url}/mcp`, {
    method: 'POST',
    headers: { ...MCP_POST_HEADERS, authorization: `Bearer ${token}`, 'mcp-protocol-version': version },
    body: JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body: JSON.parse(text) as Answer['body'] };
}

const list = (id: number): unknown => ({ jsonrpc: '2.0', id, method: 'tools/list' });
const call = (id: number, name: string): unknown => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });

describe('rate limits and quotas', () => {
  it('an identity bursting past its bucket gets 429, Retry-After and a JSON-RPC error for its id; the upstream receives nothing; after the wait it passes', async () => {
    const carol = await fx.idp.token(AUD, { sub: 'carol' });
    for (let i = 1; i <= 3; i++) expect((await post(carol, list(i))).status).toBe(200);
    const before = fx.upstream.received.length;
    const refused = await post(carol, list(7));
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('4'); // one token per 3.33 s, rounded up
    expect(refused.body).toEqual({ jsonrpc: '2.0', id: 7, error: { code: -32029, message: expect.any(String), data: { reason: 'rate_limited' } } });
    expect(fx.upstream.received.length).toBe(before);
    // Another identity, and the same subject through another client, have buckets of their own.
    expect((await post(await fx.idp.token(AUD, { sub: 'dave' }), list(1))).status).toBe(200);
    expect((await post(await fx.idp.token(AUD, { sub: 'carol', client_id: 'other-client' }), list(1))).status).toBe(200);
    // A fresh token of the same identity shares the bucket.
    expect((await post(await fx.idp.token(AUD, { sub: 'carol' }), list(8))).status).toBe(429);
    offsetMs += 4_000;
    expect((await post(carol, list(9))).status).toBe(200);
  });

  it('a call the policy refuses costs nothing', async () => {
    const erin = await fx.idp.token(AUD, { sub: 'erin' });
    for (let i = 0; i < 5; i++) {
      const r = await post(erin, call(i, 'forbidden_tool'));
      expect(r.status).toBe(403);
      expect(r.body.error?.data?.reason).toBe('policy_denied');
    }
    for (let i = 1; i <= 3; i++) expect((await post(erin, list(i))).status).toBe(200);
  });

  it('a batch (2025-03-26) costs one unit per message, and its refusal answers for the first request id', async () => {
    const frank = await fx.idp.token(AUD, { sub: 'frank' });
    const before = fx.upstream.received.length;
    const tooLong = await post(frank, [list(11), list(12), list(13), list(14)], '2025-03-26');
    expect(tooLong.status).toBe(429);
    expect(tooLong.body.id).toBe(11);
    expect(fx.upstream.received.length).toBe(before); // and it spent nothing
    expect((await post(frank, [list(1), list(2)], '2025-03-26')).status).toBe(200);
    expect((await post(frank, list(3))).status).toBe(200);
    expect((await post(frank, list(4))).status).toBe(429);
  });

  it('a tool quota (delete_*: 2 per hour) holds across bucket refills; the Retry-After is the time to the next window', async () => {
    const grace = await fx.idp.token(AUD, { sub: 'grace' });
    expect((await post(grace, call(1, 'delete_repo'))).status).toBe(200);
    offsetMs += 10_000;
    expect((await post(grace, call(2, 'delete_file'))).status).toBe(200);
    offsetMs += 10_000;
    const before = fx.upstream.received.length;
    const now = Date.now() + offsetMs;
    const refused = await post(grace, call(3, 'delete_repo'));
    expect(refused.status).toBe(429);
    const expected = Math.ceil((Math.ceil(now / 3_600_000) * 3_600_000 - now) / 1000);
    expect(Math.abs(Number(refused.headers['retry-after']) - expected)).toBeLessThanOrEqual(1);
    expect(fx.upstream.received.length).toBe(before);
    expect((await post(grace, call(4, 'search'))).status).toBe(200); // other tools: only the bucket applies
  });

  it('a limit keyed by a verified claim is shared by every identity of that tenant', async () => {
    const prompt = (id: number): unknown => ({ jsonrpc: '2.0', id, method: 'prompts/list' });
    const h1 = await fx.idp.token(AUD, { sub: 'heidi', tenant: 'acme' });
    const h2 = await fx.idp.token(AUD, { sub: 'ivan', tenant: 'acme' });
    expect((await post(h1, prompt(1))).status).toBe(200);
    expect((await post(h2, prompt(2))).status).toBe(200);
    expect((await post(h1, prompt(3))).status).toBe(429);
    expect((await post(await fx.idp.token(AUD, { sub: 'judy', tenant: 'globex' }), prompt(4))).status).toBe(200);
  });

  it('a config reload that leaves rateLimitStore unchanged keeps every bucket: a reload never resets a quota', async () => {
    const kim = await fx.idp.token(AUD, { sub: 'kim' });
    expect((await post(kim, call(1, 'delete_repo'))).status).toBe(200);
    expect((await post(kim, call(2, 'delete_repo'))).status).toBe(200);
    expect(await fx.gw.gateway.reloadFromFile()).toBe(true);
    expect((await post(kim, call(3, 'delete_repo'))).status).toBe(429);
  });

  it('metrics count refusals by upstream and rule (never by subject), the audit line names the rule, /readyz shows the local store', async () => {
    const metrics = await (await request(`${fx.gw.adminUrl}/metrics`)).body.text();
    const line = metrics.split('\n').find((l) => l.startsWith('mcp_warden_rate_limited_total{') && l.includes('rule="calls"'));
    expect(line).toMatch(/^mcp_warden_rate_limited_total\{upstream="mcp",rule="calls"\} [1-9]/);
    expect(metrics).not.toMatch(/carol|frank/);
    const audit = fx.gw.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['event'] === 'decision' && l['reason'] === 'rate_limited');
    expect(audit.length).toBeGreaterThan(0);
    expect(audit.find((l) => l['sub'] === 'grace')).toMatchObject({ rule: 'deletes', status: 429, upstream: 'mcp' });
    const ready = (await (await request(`${fx.gw.adminUrl}/readyz`)).body.json()) as Record<string, unknown>;
    expect(ready['rateLimits']).toEqual({ store: 'local', mode: 'local' });
  });
});

describe('rate limit configuration', () => {
  const base = (limits: string, root = ''): string => [
    `publicUrl: ${PUBLIC_URL}`,
    'issuers:', '  - name: idp', '    issuer: https://idp.test', '    jwksUri: https://idp.test/jwks', '    algorithms: [RS256]',
    'upstreams:', '  - name: mcp', '    path: /mcp', '    target: http://127.0.0.1:3001/mcp', '    issuers: [idp]',
    '    rateLimits:', ...limits.split('\n').map((l) => `      ${l}`),
    'identity:', '  signingKeyFile: ./gateway.jwk', root,
  ].join('\n');
  const problems = (text: string): readonly ConfigProblem[] => {
    try {
      loadConfigText(text);
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
    return [];
  };

  it('refuses an unknown key, a limit that is both bucket and quota, and a duplicate name, with file:line', () => {
    expect(problems(base('- name: a\n  rate: 1\n  rat: 2'))).toMatchObject([{ line: 15, key: 'upstreams.0.rateLimits.0.rat' }]);
    expect(problems(base('- name: a\n  rate: 1\n  quota: 5\n  windowSeconds: 60'))).toMatchObject([{ line: 13, key: 'upstreams.0.rateLimits.0', message: expect.stringContaining('either') }]);
    expect(problems(base('- name: a\n  quota: 5'))).toMatchObject([{ key: 'upstreams.0.rateLimits.0.windowSeconds' }]);
    expect(problems(base('- name: a\n  rate: 100\n- name: a\n  rate: 100'))).toMatchObject([{ line: 15, key: 'upstreams.0.rateLimits.1.name' }]);
  });

  it('requires the replica count beside a shared store and a redis URL; warns when a full batch cannot fit the burst', () => {
    expect(problems(base('- name: a\n  rate: 100', 'rateLimitStore:\n  redis:\n    url: redis://127.0.0.1:6379'))).toMatchObject([{ key: 'rateLimitStore.redis.replicas' }]);
    expect(problems(base('- name: a\n  rate: 100', 'rateLimitStore:\n  redis:\n    url: http://127.0.0.1:6379\n    replicas: 2'))).toMatchObject([{ key: 'rateLimitStore.redis.url' }]);
    const config = loadConfigText(base('- name: a\n  rate: 5'));
    expect(config.warnings).toMatchObject([{ key: 'upstreams.0.rateLimits.0.rate', message: expect.stringContaining('always refused') }]);
  });
});
