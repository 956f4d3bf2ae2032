import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestIdp } from '../helpers/idp.ts';
import { TestUpstream } from '../helpers/upstream.ts';
import { freePort } from '../helpers/ports.ts';
import { startGateway, twoUpstreamConfig } from '../helpers/gateway.ts';

// Issue 24 §6: the image's HEALTHCHECK runs `mcp-warden health --config <file>`, which follows the
// admin port the config names instead of a port baked into the Dockerfile.

let idp: TestIdp;
let upstream: TestUpstream;
let dir: string;
beforeAll(async () => {
  idp = await TestIdp.start();
  upstream = await TestUpstream.start();
  dir = mkdtempSync(join(tmpdir(), 'mcp-warden-health-'));
});
afterAll(async () => {
  await upstream?.close();
  await idp?.close();
  rmSync(dir, { recursive: true, force: true });
});

function health(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['bin/mcp-warden.js', 'health', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) => child.once('close', (code) => {
    clearTimeout(timer);
    resolve({ code, stdout, stderr });
  }));
}

describe('mcp-warden health (the container HEALTHCHECK)', () => {
  it('asks /healthz on the admin port the config names (not 9090) and exits 0; once the gateway is gone it exits 1 naming the URL', async () => {
    const admin = await freePort();
    const g = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url, { root: { admin: { host: '127.0.0.1', port: admin } } }));
    let closed = false;
    try {
      expect(admin).not.toBe(9090);
      const up = await health(g.configFile);
      expect(up).toEqual({ code: 0, stdout: `healthy: http://127.0.0.1:${admin}/healthz: status 200\n`, stderr: '' });
      const kept = join(dir, 'config.yaml'); // close() removes the gateway's own directory
      copyFileSync(g.configFile, kept);
      await g.close();
      closed = true;
      const down = await health(kept);
      expect(down.code).toBe(1);
      expect(down.stderr).toBe(`unhealthy: http://127.0.0.1:${admin}/healthz: ECONNREFUSED\n`);
    } finally {
      if (!closed) await g.close();
    }
  }, 60_000);

  it('a wildcard admin host is asked on loopback; a config that cannot be read exits 1 with the file named', async () => {
    const admin = await freePort();
    const g = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, upstream.url, { root: { admin: { host: '0.0.0.0', port: admin } } }));
    try {
      expect((await health(g.configFile)).stdout).toBe(`healthy: http://127.0.0.1:${admin}/healthz: status 200\n`);
    } finally {
      await g.close();
    }
    const missing = join(dir, 'missing.yaml');
    const res = await health(missing);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(missing);
    writeFileSync(join(dir, 'bad.yaml'), 'admin: [\n');
    expect((await health(join(dir, 'bad.yaml'))).code).toBe(1);
  }, 60_000);
});
