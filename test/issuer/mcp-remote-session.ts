// mcp-remote (the stdio proxy, `dist/proxy.js`) as a real child process: the test is its stdio
// client (newline-delimited JSON-RPC) and its browser. Every authorization URL it prints is followed
// against the loopback issuer, which signs in and consents, and the callback is then delivered to
// mcp-remote's own loopback listener.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/ports.ts';
import { followAuthorization } from './support.ts';

const PROXY = fileURLToPath(new URL('../../node_modules/mcp-remote/dist/proxy.js', import.meta.url));
const AUTHORIZE = /Please authorize this client by visiting:\s+(http:\/\/127\.0\.0\.1:\d+\/auth\?\S+)/g;

export interface RpcAnswer {
  readonly id: number;
  readonly result?: Record<string, unknown>;
  readonly error?: { readonly code: number; readonly message: string };
}

export class McpRemote {
  /** Every authorization request mcp-remote sent the "browser" to, in order. */
  readonly authorizations: URL[] = [];
  stderr = '';
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #answers = new Map<number, RpcAnswer>();
  readonly #exited: Promise<void>;
  #stdout = '';
  #nextId = 1;
  #browsing: Promise<void> = Promise.resolve();

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.stdout.on('data', (d: Buffer) => this.#onStdout(d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => {
      this.stderr += d.toString('utf8');
      const found = [...this.stderr.matchAll(AUTHORIZE)];
      for (const match of found.slice(this.authorizations.length)) {
        const url = new URL(match[1] as string);
        this.authorizations.push(url);
        // One browser, one sign-in at a time, as a person would.
        this.#browsing = this.#browsing.then(() => browse(url));
      }
    });
  }

  /** `mcp-remote <url> <callback port> …args`, its token store in `configDir`, in its own process group. */
  static async start(url: string, configDir: string, args: readonly string[] = []): Promise<McpRemote> {
    const port = await freePort();
    const child = spawn(process.execPath, [PROXY, url, String(port), ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, NODE_OPTIONS: undefined, MCP_REMOTE_CONFIG_DIR: configDir, BROWSER: 'true' },
    });
    return new McpRemote(child);
  }

  #onStdout(chunk: string): void {
    this.#stdout += chunk;
    let newline = this.#stdout.indexOf('\n');
    while (newline !== -1) {
      const line = this.#stdout.slice(0, newline).trim();
      this.#stdout = this.#stdout.slice(newline + 1);
      if (line.startsWith('{')) {
        const message = JSON.parse(line) as Partial<RpcAnswer> & { method?: string };
        if (typeof message.id === 'number' && message.method === undefined) this.#answers.set(message.id, message as RpcAnswer);
      }
      newline = this.#stdout.indexOf('\n');
    }
  }

  /** Sends one request on stdin and waits (bounded) for its answer. */
  async request(method: string, params: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<RpcAnswer> {
    const id = this.#nextId++;
    this.#child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const answer = this.#answers.get(id);
      if (answer !== undefined) return answer;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`mcp-remote did not answer ${method} within ${timeoutMs} ms; stderr:\n${this.stderr.slice(-3000)}`);
  }

  notify(method: string): void {
    this.#child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method })}\n`);
  }

  /** initialize + notifications/initialized, as a 2025-11-25 stdio host does. */
  async initialize(): Promise<RpcAnswer> {
    const answer = await this.request('initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'warden-e2e', version: '1.0.0' } });
    this.notify('notifications/initialized');
    return answer;
  }

  async close(): Promise<void> {
    this.#child.stdin.end();
    const group = -(this.#child.pid as number);
    const signal = (name: NodeJS.Signals): void => {
      try {
        process.kill(group, name);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    };
    signal('SIGTERM');
    await Promise.race([this.#exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
    if (this.#child.exitCode === null && this.#child.signalCode === null) signal('SIGKILL');
    await this.#browsing;
  }
}

/**
 * Signs in at the issuer, then delivers the callback. mcp-remote prints the URL before its callback
 * listener is up, so the delivery is retried for a few seconds; a sign-in mcp-remote has abandoned
 * by then is left undelivered (the test asserts on what mcp-remote answers, not on this).
 */
async function browse(url: URL): Promise<void> {
  const callback = await followAuthorization(url, url.searchParams.get('redirect_uri') as string);
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    const delivered = await fetch(callback).then((r) => r.status < 400, () => false);
    if (delivered) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
