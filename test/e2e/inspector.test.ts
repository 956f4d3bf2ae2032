import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { V2Upstream } from '../helpers/sdk-v2.ts';
import { freePort } from '../helpers/ports.ts';
import { startGatewayStack, WORKLOAD, type GatewayStack } from '../conformance/stack.ts';
import { followAuthorization } from '../issuer/support.ts';
import { startTestDemo } from '../issuer/demo-stack.ts';
import { demoSteps } from '../../src/demo/instructions.ts';
import { delimiter } from 'node:path';

// The CLI of the MCP Inspector 2.x (`mcp-inspector --cli`, @modelcontextprotocol/inspector 2.12; the
// separate @modelcontextprotocol/inspector-cli package is the 1.x line on SDK v1, not used). Each run
// is a real child process on loopback. `--protocol-era legacy` speaks 2025-11-25 (initialize,
// sessions); `--protocol-era modern` pins 2026-07-28 (server/discover, Mcp-Method/Mcp-Name/Mcp-Param-*
// headers, no fallback). A pre-obtained token goes in with `--header "Authorization: Bearer …"`;
// without it the CLI runs its own OAuth (RFC 9728 discovery from the 401, RFC 8414, dynamic
// registration, PKCE, resource indicator) and, with MCP_AUTO_OPEN_ENABLED=true and no TTY, prints
// "Please navigate to: <url>" on stderr and waits on its loopback --callback-url: this test is the browser.
const INSPECTOR = fileURLToPath(new URL('../../node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js', import.meta.url));
const RUN_TIMEOUT_MS = 40_000;
const ERAS = [
  { era: 'legacy', version: '2025-11-25' },
  { era: 'modern', version: '2026-07-28' },
] as const;

let upstream: V2Upstream;
let stack: GatewayStack;
let token: string;
let home: string;

beforeAll(async () => {
  upstream = await V2Upstream.start();
  stack = await startGatewayStack(upstream.url, { path: '/tools/mcp', scope: 'mcp:tools' });
  token = await stack.token();
  home = await mkdtemp(join(tmpdir(), 'mcp-warden-inspector-'));
});
afterAll(async () => {
  await stack?.close();
  await upstream?.close();
  if (home !== undefined) await rm(home, { recursive: true, force: true });
});
beforeEach(() => {
  upstream.received.length = 0;
  upstream.bytes = 0;
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface RunOptions {
  /** Called with the stderr seen so far until it returns true (the scripted browser step). */
  readonly onStderr?: (stderr: string) => boolean;
}

/**
 * Runs `mcp-inspector --cli <args>` on this Node with a fresh HOME per run (its catalog and OAuth
 * store live under ~/.mcp-inspector), secrets in memory only, and the browser opener set to `true`.
 */
async function inspector(args: readonly string[], options: RunOptions = {}): Promise<Run> {
  const runHome = await mkdtemp(join(home, 'run-'));
  const env: Record<string, string | undefined> = {
    ...process.env, HOME: runHome, NODE_OPTIONS: undefined, BROWSER: 'true', MCP_INSPECTOR_SECRET_STORE: 'memory', MCP_AUTO_OPEN_ENABLED: 'true',
  };
  // Its own process group, so a hung run is ended together with anything it started.
  const child = spawn(process.execPath, [INSPECTOR, '--cli', ...args, '--format', 'json'], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let watching = options.onStderr;
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString('utf8');
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
    if (watching?.(stderr) === true) watching = undefined;
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

const bearer = (): string[] => ['--header', `Authorization: Bearer ${token}`];

function result<T>(run: Run): T {
  expect(run.code, run.stderr).toBe(0);
  return (JSON.parse(run.stdout) as { result: T }).result;
}

function textOf(run: Run): string {
  return result<{ content: { text: string }[] }>(run).content[0]?.text ?? '';
}

function header(name: string): (string | undefined)[] {
  return upstream.received.map((r) => r.headers.get(name)?.join(','));
}

/** Every request the upstream received came through the gateway: the assertion, never a credential. */
function expectAssertedOnly(): Record<string, unknown>[] {
  expect(upstream.received.length).toBeGreaterThan(0);
  return upstream.received.map((r) => {
    expect(r.headers.has('authorization')).toBe(false);
    const identity = r.headers.get('x-mcp-identity') ?? [];
    expect(identity).toHaveLength(1);
    expect(decodeProtectedHeader(identity[0] as string).typ).toBe('mcp-identity+jwt');
    return decodeJwt(identity[0] as string);
  });
}

describe.each(ERAS)('the Inspector 2.x CLI through the gateway, --protocol-era $era ($version)', ({ era, version }) => {
  it('lists the same tools as direct, with a token from the embedded issuer in --header', async () => {
    const direct = result<{ tools: { name: string }[] }>(await inspector([upstream.url, '--protocol-era', era, '--method', 'tools/list']));
    upstream.received.length = 0;
    const through = result<{ tools: { name: string }[] }>(await inspector([stack.url, '--protocol-era', era, '--method', 'tools/list', ...bearer()]));
    expect(through.tools.map((t) => t.name)).toEqual(direct.tools.map((t) => t.name));
    expect(through.tools.map((t) => t.name)).toEqual(expect.arrayContaining(['search', 'delete_repo']));
    expect(header('mcp-protocol-version')).toContain(version);
    for (const claims of expectAssertedOnly()) expect(claims).toMatchObject({ sub: WORKLOAD.client_id, aud: stack.url, scope: 'mcp:tools' });
  }, 90_000);

  it('calls a tool with an argument; the answer equals the direct one and the upstream gets what the era requires', async () => {
    const args = ['--protocol-era', era, '--method', 'tools/call', '--tool-name', 'search', '--tool-arg', 'region=eu', 'q=gateways'];
    const direct = textOf(await inspector([upstream.url, ...args]));
    upstream.received.length = 0;
    const through = textOf(await inspector([stack.url, ...args, ...bearer()]));
    expect(through).toBe('results for gateways in eu');
    expect(through).toBe(direct);
    expectAssertedOnly();
    const call = upstream.received.find((r) => r.body.includes('"tools/call"'));
    expect(call?.headers.get('mcp-protocol-version')).toEqual([version]);
    if (era === 'modern') {
      // 2026-07-28 transport: Mcp-Method/Mcp-Name and the x-mcp-header mirror reach the upstream; no sessions.
      expect(call?.headers.get('mcp-method')).toEqual(['tools/call']);
      expect(call?.headers.get('mcp-name')).toEqual(['search']);
      expect(call?.headers.get('mcp-param-region')).toEqual(['eu']);
      expect(header('mcp-session-id').filter((v) => v !== undefined)).toEqual([]);
      expect(upstream.received.some((r) => r.body.includes('"initialize"'))).toBe(false);
    } else {
      expect(upstream.received.some((r) => r.body.includes('"initialize"'))).toBe(true);
    }
  }, 90_000);

  it('completes its own OAuth against the embedded issuer (registration, PKCE, resource, token) and calls the tool', async () => {
    const callbackUrl = `http://127.0.0.1:${await freePort()}/oauth/callback`;
    let authorize: URL | undefined;
    let browser: Promise<void> = Promise.resolve();
    const run = await inspector([stack.url, '--protocol-era', era, '--callback-url', callbackUrl, '--method', 'tools/call', '--tool-name', 'search', '--tool-arg', 'region=us', 'q=oauth'], {
      onStderr: (stderr) => {
        const match = stderr.match(/Please navigate to: (http:\/\/127\.0\.0\.1:\d+\/auth\?\S+)/);
        if (match === null) return false;
        authorize = new URL(match[1] as string);
        const start = authorize;
        // The loopback issuer signs in and consents; the "browser" then lands on the CLI's callback.
        browser = followAuthorization(start, callbackUrl).then(async (callback) => {
          expect(callback.searchParams.get('iss')).toBe(stack.issuer.url);
          expect((await fetch(callback)).status).toBe(200);
        });
        return true;
      },
    });
    await browser;
    expect(textOf(run)).toBe('results for oauth in us');
    expect(authorize?.searchParams.get('resource')).toBe(stack.url);
    expect(authorize?.searchParams.get('scope')).toBe('mcp:tools');
    expect(authorize?.searchParams.get('code_challenge_method')).toBe('S256');
    // A client it registered itself (RFC 7591), not the configured workload.
    const clientId = authorize?.searchParams.get('client_id');
    expect(clientId).toBeTruthy();
    expect(clientId).not.toBe(WORKLOAD.client_id);
    for (const claims of expectAssertedOnly()) expect(claims).toMatchObject({ client_id: clientId, aud: stack.url, scope: 'mcp:tools' });
    expect(upstream.received.find((r) => r.body.includes('"tools/call"'))?.headers.get('mcp-protocol-version')).toEqual([version]);
  }, 90_000);

  it('with no token and --stored-auth-only the CLI stops at the 401 and the upstream receives nothing', async () => {
    const before = stack.decisions.length;
    const run = await inspector([stack.url, '--protocol-era', era, '--stored-auth-only', '--method', 'tools/list']);
    expect(run.code).not.toBe(0);
    expect(run.stdout + run.stderr).toContain('auth_required');
    expect(stack.decisions.slice(before).map((d) => [d.status, d.reason])).toContainEqual([401, 'token_missing']);
    expect(upstream.received).toHaveLength(0);
    expect(upstream.bytes).toBe(0);
  }, 90_000);
});

describe('the Inspector CLI line the demo prints', () => {
  let demo: Awaited<ReturnType<typeof startTestDemo>>;
  beforeAll(async () => {
    demo = await startTestDemo();
  });
  afterAll(async () => demo?.close());

  it('runs verbatim in a shell whose node is the machine’s own, completes OAuth against the demo issuer and calls whoami', async () => {
    const url = demo.stack.config.upstreams[0]?.audience as string;
    const command = demoSteps(demo.stack.config, demo.stack.issuer.url).find((s) => s.commands.includes('mcp-inspector'))?.commands ?? '';
    expect(command).toBe(`npx mcp-inspector --cli ${url} --method tools/call --tool-name whoami`);
    const runHome = await mkdtemp(join(home, 'demo-'));
    // The user's own PATH (node 20 here): npx puts the project's Node 24 first, as for mcp-warden.
    const userPath = (process.env['PATH'] ?? '').split(delimiter).filter((p) => !p.includes('node_modules')).join(delimiter);
    // A person has a TTY; this test has none, so MCP_AUTO_OPEN_ENABLED=true lets the CLI print the sign-in URL anyway.
    const env = { ...process.env, PATH: userPath, HOME: runHome, NODE_OPTIONS: undefined, BROWSER: 'true', MCP_INSPECTOR_SECRET_STORE: 'memory', MCP_AUTO_OPEN_ENABLED: 'true' };
    const child = spawn('bash', ['-c', `exec ${command} --format json`], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let browsed: Promise<number> | undefined;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
      const match = stderr.match(/Please navigate to: (http:\/\/127\.0\.0\.1:\d+\/auth\?\S+)/);
      if (match === null || browsed !== undefined) return;
      const start = new URL(match[1] as string);
      browsed = followAuthorization(start, start.searchParams.get('redirect_uri') as string).then(async (callback) => (await fetch(callback)).status);
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        reject(new Error(`the demo's Inspector line did not finish within ${RUN_TIMEOUT_MS} ms: ${stderr}`));
      }, RUN_TIMEOUT_MS);
      child.once('close', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(await browsed).toBe(200);
    expect(code, stderr).toBe(0);
    const result = (JSON.parse(stdout) as { result: { content: { text: string }[] } }).result;
    const whoami = JSON.parse(result.content[0]?.text ?? '{}') as { sub: string; scopes: string[] };
    // The Inspector asks for the resource's whole scopes_supported (RFC 9728), which the loopback demo issuer grants.
    expect(whoami.scopes).toEqual(['mcp:demo', 'mcp:demo:admin']);
    expect(whoami.sub).toMatch(/.+/);
  }, 90_000);
});
