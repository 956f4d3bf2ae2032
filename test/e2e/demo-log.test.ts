import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { request } from 'undici';
import { loadConfig } from '../../src/config/compile.ts';
import { asMetadata, clientCredentials, register } from '../../src/rehearse/tokens.ts';
import { demoConfig } from '../helpers/demo.ts';
import { MCP_POST_HEADERS } from '../helpers/rpc.ts';

let configFile: string;
let child: ChildProcess;
let out = '';

/** Waits (bounded) until the demo's stdout matches. */
async function printed(pattern: RegExp, ms = 20_000): Promise<string> {
  const end = Date.now() + ms;
  while (!pattern.test(out)) {
    if (Date.now() > end) throw new Error(`demo output never matched ${pattern}:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return out;
}

beforeAll(async () => {
  configFile = await demoConfig();
  // What `npm start` runs, with the demo config moved to free ports; no MCP_WARDEN_LOG_LEVEL: the demo's own default.
  const { MCP_WARDEN_LOG_LEVEL: _level, ...env } = process.env;
  child = spawn(process.execPath, ['src/demo/main.ts', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env });
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  await printed(/mcp-warden demo is running/, 30_000);
}, 40_000);

afterAll(async () => {
  if (child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  rmSync(dirname(configFile), { recursive: true, force: true });
});

describe('npm start: the demo shows its decisions', () => {
  it('prints one readable decision line for an allowed call and one for a refused call, and no JSON audit plumbing', async () => {
    const config = loadConfig(configFile);
    const demo = config.upstreams[0];
    const issuer = config.authorizationServer?.issuer as string;
    const meta = await asMetadata(issuer);
    const client = await register(meta?.registration_endpoint as string, ['mcp:demo'], undefined);
    if (typeof client === 'string') throw new Error(client);
    const token = await clientCredentials(meta?.token_endpoint as string, client, demo?.audience as string, ['mcp:demo']);
    const call = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}';
    const allowed = await request(demo?.audience as string, { method: 'POST', headers: { ...MCP_POST_HEADERS, authorization: `Bearer ${token}` }, body: call });
    await allowed.body.dump();
    expect(allowed.statusCode).toBe(200);
    await printed(/\d\d:\d\d:\d\d allow {2}demo tools\/call whoami sub=\S+ 200 rule=tools\[1\] \d+ ms\n/);
    const refused = await request(demo?.audience as string, { method: 'POST', headers: MCP_POST_HEADERS, body: call });
    await refused.body.dump();
    expect(refused.statusCode).toBe(401);
    const text = await printed(/\d\d:\d\d:\d\d deny {3}demo POST reason=token_missing 401 \d+ ms\n/);
    expect(text).not.toMatch(/"event":|audit_chain_start|"hash"/);
  });
});
