import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { meterSockets } from './socket-meter.ts';

export interface Received {
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: readonly string[];
  /** Lower-cased name → every value received under it. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
  body: string;
}

/**
 * A real MCP server (SDK Streamable HTTP) behind the gateway, recording every request and every byte
 * that reaches its socket (so "UP=0" is asserted at the socket, not inferred from a status).
 * Paths: /mcp (MCP), /echo (JSON of what arrived), /sse (events paced by the test), /slow (delays).
 */
export class TestUpstream {
  readonly server: Server;
  readonly received: Received[] = [];
  bytes = 0;
  url = '';
  slowMs = 5_000;
  /** Called by the /sse handler before each event; resolves when the test lets it send the next one. */
  sseGate: ((index: number) => Promise<void>) | undefined;
  sseEvents = 100;
  /** How many /sse responses have closed (finished or torn down). */
  sseClosed = 0;
  readonly #sockets = new Set<Socket>();
  readonly #sessions = new Map<string, StreamableHTTPServerTransport>();
  readonly #stateful: boolean;

  readonly #json: boolean;

  private constructor(stateful: boolean, json: boolean) {
    this.#stateful = stateful;
    this.#json = json;
    this.server = createServer((req, res) => void this.#handle(req, res));
    meterSockets(this.server, this.#sockets, (n) => {
      this.bytes += n;
    });
  }

  static async start(options: { sessions?: boolean; jsonResponse?: boolean } = {}): Promise<TestUpstream> {
    const u = new TestUpstream(options.sessions ?? false, options.jsonResponse ?? false);
    await new Promise<void>((resolve) => u.server.listen(0, '127.0.0.1', resolve));
    u.url = `http://127.0.0.1:${(u.server.address() as AddressInfo).port}`;
    return u;
  }

  /** The identity-bearing headers of the last request (what the echo tool would report). */
  last(): Received | undefined {
    return this.received[this.received.length - 1];
  }

  reset(): void {
    this.received.length = 0;
    this.bytes = 0;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const headers = new Map<string, string[]>();
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = (req.rawHeaders[i] as string).toLowerCase();
      headers.set(name, [...(headers.get(name) ?? []), req.rawHeaders[i + 1] as string]);
    }
    const record: Received = { method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, headers, body: '' };
    this.received.push(record);
    const path = (req.url ?? '').split('?')[0] ?? '';
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    record.body = Buffer.concat(chunks).toString('utf8');
    if (path === '/echo' || path.startsWith('/echo/')) {
      const body = JSON.stringify({ method: req.method, url: req.url, headers: Object.fromEntries(headers), body: record.body });
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'echo', connection: 'x-secret-hop', 'x-secret-hop': 'drop-me' }).end(body);
      return;
    }
    if (path === '/slow') {
      const t = setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'), this.slowMs);
      res.on('close', () => clearTimeout(t));
      return;
    }
    if (path === '/sse') {
      res.on('close', () => {
        this.sseClosed++;
      });
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      for (let i = 0; i < this.sseEvents && !res.destroyed; i++) {
        if (this.sseGate !== undefined) await this.sseGate(i);
        res.write(`id: ${i}\ndata: {"n":${i}}\n\n`);
      }
      res.end();
      return;
    }
    if (path === '/mcp') return this.#mcp(req, res, headers, record.body === '' ? undefined : (JSON.parse(record.body) as unknown));
    res.writeHead(404).end();
  }

  async #mcp(req: IncomingMessage, res: ServerResponse, headers: ReadonlyMap<string, readonly string[]>, body: unknown): Promise<void> {
    const sessionId = req.headers['mcp-session-id'];
    if (this.#stateful && typeof sessionId === 'string') {
      const existing = this.#sessions.get(sessionId);
      if (existing === undefined) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}');
        return;
      }
      await existing.handleRequest(req, res, body);
      return;
    }
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: this.#stateful ? () => randomUUID() : undefined,
      enableJsonResponse: this.#json,
      onsessioninitialized: (id) => {
        this.#sessions.set(id, transport);
      },
    });
    const server = buildServer(headers);
    await server.connect(transport);
    if (!this.#stateful) res.on('close', () => void server.close());
    await transport.handleRequest(req, res, body);
  }

  /** JSON-RPC calls that reached the MCP endpoint: method and tool name, in order. */
  calls(): string[] {
    const out: string[] = [];
    for (const r of this.received) {
      if (!r.url.startsWith('/mcp') || r.body === '') continue;
      const parsed = JSON.parse(r.body) as unknown;
      for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
        const msg = m as { method?: string; params?: { name?: string } };
        out.push(msg.params?.name === undefined ? String(msg.method) : `${msg.method}:${msg.params.name}`);
      }
    }
    return out;
  }

  async close(): Promise<void> {
    for (const t of this.#sessions.values()) await t.close().catch(() => undefined);
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function buildServer(headers: ReadonlyMap<string, readonly string[]>): McpServer {
  const server = new McpServer({ name: 'test-upstream', version: '1.0.0' });
  server.registerTool('whoami', { description: 'Echoes the identity headers this server received' }, () => ({
    content: [{
      type: 'text',
      text: JSON.stringify({
        identity: headers.get('x-mcp-identity') ?? [],
        authorization: headers.get('authorization') ?? [],
        cookie: headers.get('cookie') ?? [],
      }),
    }],
  }));
  server.registerTool('search', { description: 'Searches', inputSchema: { q: z.string().optional() } }, ({ q }) => ({
    content: [{ type: 'text', text: `results for ${q ?? ''}` }],
  }));
  server.registerTool('delete_repo', { description: 'Deletes a repository' }, () => ({ content: [{ type: 'text', text: 'deleted' }] }));
  server.registerTool('admin_reset', { description: 'Resets everything' }, () => ({ content: [{ type: 'text', text: 'reset' }] }));
  server.registerTool('read_file', { description: 'Reads a file', inputSchema: { path: z.string() } }, ({ path }) => ({ content: [{ type: 'text', text: `contents of ${path}` }] }));
  server.registerPrompt('summarize', { description: 'Summarize' }, () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'summarize' } }] }));
  server.registerPrompt('secret_prompt', { description: 'Secret' }, () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'secret' } }] }));
  server.registerResource('readme', 'file:///docs/readme.md', { description: 'Readme' }, (uri) => ({ contents: [{ uri: uri.href, text: 'readme' }] }));
  server.registerResource('shadow', 'file:///etc/shadow', { description: 'Secret' }, (uri) => ({ contents: [{ uri: uri.href, text: 'root:x' }] }));
  return server;
}
