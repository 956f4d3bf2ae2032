import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { twoUpstreamConfig } from '../helpers/gateway.ts';
import { freePorts } from '../helpers/ports.ts';
import { configProblems } from '../helpers/config.ts';

// Attacks on `serve --workers N`:
// - the admin listener is the primary's, which has no revocation state: a transmitter's RFC 8935 push
//   (POST /ssf/push/<issuer>) got 404 there, so a revoked token stayed accepted by every worker;
// - local rate limits are divided per worker but never below 1: a quota of 1 per day under 4 workers
//   allowed 4. Both are now refused at validate and at start, naming the key.

const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-push-workers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const secretFile = join(dir, 'push.secret');
writeFileSync(secretFile, 'p'.repeat(40), { mode: 0o600 });

interface Options { readonly ports?: { traffic: number; admin: number }; readonly push?: boolean; readonly rateLimits?: unknown[]; readonly redis?: boolean }

function config(workers: number | 'auto', options: Options = {}): string {
  const ports = options.ports ?? { traffic: 0, admin: 0 };
  const base = twoUpstreamConfig({ issuer: 'http://127.0.0.1:9', jwksUri: 'http://127.0.0.1:9/jwks' }, 'http://127.0.0.1:9', {
    mcp: { rateLimits: options.rateLimits ?? [] },
    root: {
      ...(options.redis === true ? { rateLimitStore: { redis: { url: 'redis://127.0.0.1:9', replicas: 2 } } } : {}),
      workers,
      listen: { host: '127.0.0.1', port: ports.traffic },
      admin: { host: '127.0.0.1', port: ports.admin },
      ...(options.push === false ? {} : { revocation: { transmitters: [{ issuer: 'idp', push: { secretFile } }] } }),
    },
  });
  return stringify({ ...base, identity: { signingKeyFile: join(dir, 'gw.jwk') } });
}

const listening = (port: number): Promise<boolean> => new Promise((resolve) => {
  const s = connect(port, '127.0.0.1');
  s.once('connect', () => (s.destroy(), resolve(true)));
  s.once('error', () => resolve(false));
});

describe('what serve --workers N cannot serve is refused', () => {
  it('validate refuses push delivery with workers: 2 or auto, and accepts it with one worker', () => {
    expect(configProblems(config(2))).toEqual([expect.stringMatching(/^revocation\.transmitters\.0\.push: push delivery is not supported with more than one worker/)]);
    expect(configProblems(config('auto'))).toEqual([expect.stringMatching(/^revocation\.transmitters\.0\.push: push delivery is not supported/)]);
    expect(configProblems(config(1))).toEqual([]);
  });

  it('validate refuses a local quota or burst smaller than the worker count, and accepts it with a shared store or a larger limit', () => {
    const quota = [{ name: 'deletes', tool: 'delete_*', quota: 1, windowSeconds: 86_400 }];
    const burst = [{ name: 'calls', rate: 3, perSeconds: 1 }];
    expect(configProblems(config(4, { push: false, rateLimits: quota }))).toEqual([expect.stringMatching(/^upstreams\.0\.rateLimits\.0: allows 1 but each of 4 workers/)]);
    expect(configProblems(config(4, { push: false, rateLimits: burst }))).toEqual([expect.stringMatching(/^upstreams\.0\.rateLimits\.0: allows 3 but each of 4 workers/)]);
    expect(configProblems(config(4, { push: false, rateLimits: quota, redis: true }))).toEqual([]);
    expect(configProblems(config(4, { push: false, rateLimits: [{ name: 'calls', rate: 4, perSeconds: 1 }] }))).toEqual([]);
    expect(configProblems(config(1, { push: false, rateLimits: quota }))).toEqual([]);
  });

  it('serve --workers 2 on a workers: 1 config with push delivery and a quota of 1 exits 1 naming both keys, and never opens the traffic or admin port', async () => {
    const [traffic, admin] = (await freePorts(2)) as [number, number];
    const file = join(dir, 'serve.yaml');
    writeFileSync(file, config(1, { ports: { traffic, admin }, rateLimits: [{ name: 'deletes', tool: 'delete_*', quota: 1, windowSeconds: 86_400 }] }));
    const child = spawn(process.execPath, ['bin/mcp-warden.js', 'serve', '--config', file, '--workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MCP_WARDEN_LOG_LEVEL: 'warn' } });
    let output = '';
    for (const s of [child.stdout, child.stderr]) s?.on('data', (d: Buffer) => (output += d.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    clearTimeout(timer);
    expect(code).toBe(1);
    expect(output).toMatch(/revocation\.transmitters\.0\.push: push delivery is not supported with more than one worker/);
    expect(output).toMatch(/upstreams\.0\.rateLimits\.0: allows 1 but each of 2 workers/);
    expect(await listening(traffic)).toBe(false);
    expect(await listening(admin)).toBe(false);
  }, 30_000);
});
