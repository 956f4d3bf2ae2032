import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { AUD, twoUpstreamConfig } from '../helpers/gateway.ts';
import { TestIdp } from '../helpers/idp.ts';
import { freePorts } from '../helpers/ports.ts';
import { TestRedis } from '../helpers/redis.ts';
import { MCP_POST_HEADERS } from '../helpers/rpc.ts';
import { TestUpstream } from '../helpers/upstream.ts';

// Two real `mcp-warden serve` processes, as two replicas run, share one quota in one redis-server:
// calls spread over both never pass more than the quota in all.

let idp: TestIdp;
let upstream: TestUpstream;
let redis: TestRedis;
let dir: string;
const children: ChildProcess[] = [];
const ports: { traffic: number; admin: number }[] = [];

beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = await TestUpstream.start();
  redis = await TestRedis.start();
  dir = mkdtempSync(join(tmpdir(), 'mcp-warden-replicas-'));
  const [t1, a1, t2, a2] = await freePorts(4) as [number, number, number, number];
  for (const [traffic, admin] of [[t1, a1], [t2, a2]] as const) {
    const config = twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url, {
      mcp: { rateLimits: [{ name: 'deletes', tool: 'delete_*', quota: 5, windowSeconds: 3600 }] },
      root: {
        listen: { host: '127.0.0.1', port: traffic }, admin: { host: '127.0.0.1', port: admin },
        identity: { signingKeyFile: join(dir, 'gateway.jwk') },
        rateLimitStore: { redis: { url: redis.url, keyPrefix: `replicas-${process.pid}:`, timeoutMs: 500, replicas: 2 } },
      },
    });
    const file = join(dir, `config-${traffic}.yaml`);
    writeFileSync(file, stringify(config));
    children.push(spawn(process.execPath, ['bin/mcp-warden.js', 'serve', '--config', file], { stdio: 'ignore' }));
    ports.push({ traffic, admin });
  }
  for (const { admin } of ports) {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const mode = await request(`http://127.0.0.1:${admin}/readyz`).then(async (r) => ((await r.body.json()) as { rateLimits?: { mode?: string } }).rateLimits?.mode, () => undefined);
      if (mode === 'shared') break;
      if (Date.now() > deadline) throw new Error('a replica never reached the shared rate-limit store');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}, 30_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await redis?.kill();
  await upstream?.close();
  await idp?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('two gateway processes, one Redis', () => {
  it('share one quota exactly: 20 concurrent calls spread over both, 5 pass in all, the rest get 429', async () => {
    const token = await idp.token(AUD, { sub: 'agent-1' });
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'delete_file', arguments: {} } });
    upstream.reset();
    const statuses = await Promise.all(Array.from({ length: 20 }, async (_v, i) => {
      const { traffic } = ports[i % 2] as { traffic: number };
      const res = await request(`http://127.0.0.1:${traffic}/mcp`, { method: 'POST', headers: { ...MCP_POST_HEADERS, authorization: `Bearer ${token}` }, body });
      await res.body.dump();
      return res.statusCode;
    }));
    expect(statuses.filter((s) => s !== 429)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(15);
    expect(upstream.received.filter((r) => r.body.includes('delete_file'))).toHaveLength(5);
  });
});
