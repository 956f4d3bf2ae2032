import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { delimiter, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { TestUpstream } from '../helpers/upstream.ts';
import { startGatewayStack, WORKLOAD, type GatewayStack } from '../conformance/stack.ts';

// The MCP Inspector CLI 0.15.0 (`mcp-inspector --cli`) has no option for request headers
// (`--header` arrived in 0.16.6), so the bearer token goes in the way it does for the conformance
// runner: the Inspector's own `-e KEY=VALUE` puts NODE_OPTIONS=--import=bearer-preload.ts into the
// environment of the CLI process it spawns, and the token itself travels in the environment.
const INSPECTOR = fileURLToPath(new URL('../../node_modules/@modelcontextprotocol/inspector/cli/build/cli.js', import.meta.url));
const PRELOAD = fileURLToPath(new URL('../conformance/bearer-preload.ts', import.meta.url));
const RUN_TIMEOUT_MS = 30_000;

let upstream: TestUpstream;
let stack: GatewayStack;
let token: string;

beforeAll(async () => {
  upstream = await TestUpstream.start();
  stack = await startGatewayStack(`${upstream.url}/mcp`, { path: '/tools/mcp', scope: 'mcp:tools' });
  token = await stack.token();
});
afterAll(async () => {
  await stack?.close();
  await upstream?.close();
});
beforeEach(() => upstream.reset());

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `mcp-inspector --cli <url> …` on this Node; the Inspector starts its CLI with the `node` first on PATH. */
function inspector(args: readonly string[], withToken: boolean): Promise<Run> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    PATH: `${dirname(process.execPath)}${delimiter}${process.env['PATH'] ?? ''}`,
    NODE_OPTIONS: undefined,
    WARDEN_BEARER_TOKEN: token,
    WARDEN_BEARER_ORIGIN: new URL(stack.url).origin,
  };
  const preload = withToken ? ['-e', `NODE_OPTIONS=--import=${PRELOAD}`] : [];
  // Its own process group, so a hung run can be ended together with the CLI process it spawned.
  const child = spawn(process.execPath, [INSPECTOR, '--cli', ...preload, stack.url, ...args], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString('utf8');
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      reject(new Error(`mcp-inspector did not finish within ${RUN_TIMEOUT_MS} ms: ${stderr}`));
    }, RUN_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function textOf(run: Run): string {
  const result = JSON.parse(run.stdout) as { content: { type: string; text: string }[] };
  return result.content[0]?.text ?? '';
}

describe('the MCP Inspector CLI through the gateway', () => {
  it('lists the upstream tools with a token from the embedded issuer', async () => {
    const run = await inspector(['--method', 'tools/list'], true);
    expect(run.code, run.stderr).toBe(0);
    const names = (JSON.parse(run.stdout) as { tools: { name: string }[] }).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['whoami', 'search', 'read_file']));
    expect(upstream.calls()).toContain('tools/list');
  }, 40_000);

  it('calls a tool with arguments; the upstream sees the gateway assertion for the workload, never the token', async () => {
    const search = await inspector(['--method', 'tools/call', '--tool-name', 'search', '--tool-arg', 'q=gateways'], true);
    expect(search.code, search.stderr).toBe(0);
    expect(textOf(search)).toBe('results for gateways');

    const who = await inspector(['--method', 'tools/call', '--tool-name', 'whoami'], true);
    expect(who.code, who.stderr).toBe(0);
    const seen = JSON.parse(textOf(who)) as { identity: string[]; authorization: string[] };
    expect(seen.authorization).toEqual([]);
    expect(seen.identity).toHaveLength(1);
    const assertion = seen.identity[0] as string;
    expect(decodeProtectedHeader(assertion).typ).toBe('mcp-identity+jwt');
    expect(decodeJwt(assertion)).toMatchObject({ sub: WORKLOAD.client_id, aud: stack.url, orig_iss: stack.issuer.url, scope: 'mcp:tools' });

    expect(upstream.calls()).toEqual(expect.arrayContaining(['tools/call:search', 'tools/call:whoami']));
    expect(upstream.received.length).toBeGreaterThan(0);
    for (const r of upstream.received) {
      expect(r.headers.has('authorization')).toBe(false);
      expect(r.headers.get('x-mcp-identity')).toHaveLength(1);
    }
  }, 60_000);

  it('without the token the Inspector fails with the 401 and the upstream receives nothing', async () => {
    const run = await inspector(['--method', 'tools/list'], false);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('token_missing');
    expect(upstream.received).toHaveLength(0);
    expect(upstream.bytes).toBe(0);
  }, 40_000);
});
