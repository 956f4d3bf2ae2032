import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { twoUpstreamConfig } from '../helpers/gateway.ts';
import { freePorts } from '../helpers/ports.ts';

// Issue 21 §2 attacked: `serve --workers` answers the admin listener in the primary, while each worker
// holds its own revocation state. A push transmitter would be told 404 and every worker would keep
// honouring the revoked token; the gateway must refuse to start that way, not run with a dead kill switch.

const dir = mkdtempSync(join(tmpdir(), 'mcp-warden-workers-push-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function serve(file: string): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['bin/mcp-warden.js', 'serve', '--config', file, '--workers', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) => child.once('close', (code) => (clearTimeout(timer), resolve({ code, stderr }))));
}

describe('serve --workers with revocation delivered by push', () => {
  it('refuses to start, naming the push key, and binds nothing', async () => {
    const [port, admin] = await freePorts(2) as [number, number];
    const secretFile = join(dir, 'push-secret');
    writeFileSync(secretFile, 'p'.repeat(40), { mode: 0o600 });
    const config = twoUpstreamConfig({ issuer: 'http://127.0.0.1:9', jwksUri: 'http://127.0.0.1:9/jwks' }, 'http://127.0.0.1:9', {
      root: {
        listen: { host: '127.0.0.1', port }, admin: { host: '127.0.0.1', port: admin }, identity: { signingKeyFile: join(dir, 'gw.jwk') },
        revocation: { transmitters: [{ issuer: 'idp', push: { secretFile } }] },
      },
    });
    const file = join(dir, 'push.yaml');
    writeFileSync(file, stringify(config));
    const { code, stderr } = await serve(file);
    expect(stderr).toMatch(/revocation\.transmitters\.0\.push: push delivery is not supported with more than one worker \(the admin listener is the primary's and holds no revocation state\); use poll delivery, or workers: 1/);
    expect(code).toBe(1);
    // Nothing listens on the admin port that would have answered the transmitter 404.
    const refused = await fetch(`http://127.0.0.1:${admin}/ssf/push/idp`, { method: 'POST' }).then(() => false, () => true);
    expect(refused).toBe(true);
  }, 40_000);
});
