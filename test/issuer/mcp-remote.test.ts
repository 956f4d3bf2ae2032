import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { delimiter } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSteps } from '../../src/demo/instructions.ts';
import { startTestDemo } from './demo-stack.ts';
import { followAuthorization, tempDir } from './support.ts';

async function until(read: () => string, pattern: RegExp, what: string, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = read().match(pattern);
    if (match !== null) return match;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}; output so far:\n${read()}`);
}

/** Every JSON file mcp-remote wrote under its config directory whose name ends in `suffix`. */
function storedJson(dir: string, suffix: string): Record<string, unknown>[] {
  const found: Record<string, unknown>[] = [];
  const walk = (at: string): void => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(suffix)) found.push(JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>);
    }
  };
  walk(dir);
  return found;
}

describe('mcp-remote (its default OAuth) against the demo', () => {
  let demo: Awaited<ReturnType<typeof startTestDemo>>;
  let config: Awaited<ReturnType<typeof tempDir>>;

  beforeAll(async () => {
    demo = await startTestDemo();
    config = await tempDir();
  });
  afterAll(async () => {
    await demo?.close();
    await config?.remove();
  });

  it('registers, completes the authorization code flow, and lists the tools through the gateway', async () => {
    const url = demo.stack.config.upstreams[0]?.audience as string;
    // The line the demo prints, verbatim, in a shell whose node is the machine's own (see demo-instructions.test.ts).
    const command = demoSteps(demo.stack.config, demo.stack.issuer.url).find((s) => s.commands.includes('mcp-remote'))?.commands ?? '';
    expect(command).toBe(`npx mcp-remote-client ${url}`);
    const userPath = (process.env['PATH'] ?? '').split(delimiter).filter((p) => !p.includes('node_modules')).join(delimiter);
    // mcp-remote-client connects like the proxy does, then lists tools; stdin stays open meanwhile.
    const child = spawn('bash', ['-c', `exec ${command}`], {
      stdio: ['pipe', 'pipe', 'pipe'],
      // Its own process group, so the test can end npx and its node child together.
      detached: true,
      // Its token store goes to a temporary directory; "opening the browser" is this test's job.
      env: { ...process.env, PATH: userPath, MCP_REMOTE_CONFIG_DIR: config.dir, BROWSER: 'true' },
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      const [authorize] = await until(() => output, /http:\/\/127\.0\.0\.1:\d+\/auth\?\S+/, 'the authorization URL');
      const start = new URL(authorize as string);
      const redirectUri = start.searchParams.get('redirect_uri') as string;
      expect(start.searchParams.get('resource')).toBe(url);
      expect(start.searchParams.get('scope')).toBe('mcp:demo');
      // The loopback demo issuer signs in and consents; the browser then lands on mcp-remote's callback.
      const callback = await followAuthorization(start, redirectUri);
      expect(callback.searchParams.get('iss')).toBe(demo.stack.issuer.url);
      expect((await fetch(callback)).status).toBeLessThan(400);
      await until(() => output, /Tools:[\s\S]*"whoami"/, 'the tools list');
      expect(output).not.toMatch(/invalid_client_metadata/);

      const [client] = storedJson(config.dir, '_client_info.json');
      expect(client).toMatchObject({ grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none' });
      const [tokens] = storedJson(config.dir, '_tokens.json');
      expect(typeof tokens?.['refresh_token']).toBe('string');
    } finally {
      child.stdin.end();
      const group = -(child.pid as number);
      // mcp-remote-client exits by itself ("Exiting OK") once it has listed what it may: then the group is gone.
      const signal = (name: NodeJS.Signals): void => {
        try {
          process.kill(group, name);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
        }
      };
      signal('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      if (child.exitCode === null && child.signalCode === null) signal('SIGKILL');
    }
  }, 40_000);
});
