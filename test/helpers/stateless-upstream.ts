import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { meterSockets } from './socket-meter.ts';

export interface StatelessReceived {
  readonly headers: ReadonlyMap<string, readonly string[]>;
  readonly body: string;
}

type Rpc = { id?: string | number; method?: string; params?: { name?: string; uri?: string; notifications?: unknown } };

/**
 * A small MCP 2026-07-28 server (stateless Streamable HTTP) written for the era tests: it answers by
 * method, records every request and byte, serves lists with cacheScope "public", and keeps each
 * subscriptions/listen stream open so a test can push notifications on it.
 */
export class StatelessUpstream {
  readonly server: Server;
  readonly received: StatelessReceived[] = [];
  bytes = 0;
  url = '';
  /** Lists answered as SSE instead of JSON. */
  sse = false;
  /** Open subscriptions/listen streams, in the order they opened. */
  readonly listeners: ServerResponse[] = [];
  readonly tools: Record<string, unknown>[] = [
    { name: 'search', inputSchema: { type: 'object', properties: { region: { type: 'string', 'x-mcp-header': 'Region' }, limit: { type: 'integer', 'x-mcp-header': 'Limit' }, q: { type: 'string' } } } },
    { name: 'wetter/heute', inputSchema: { type: 'object', properties: { ort: { type: 'object', properties: { stadt: { type: 'string', 'x-mcp-header': 'Stadt' } } } } } },
    { name: 'grüße', inputSchema: { type: 'object', properties: {} } },
    { name: 'delete_repo', inputSchema: { type: 'object', properties: {} } },
  ];
  readonly #sockets = new Set<Socket>();

  private constructor() {
    this.server = createServer((req, res) => void this.#handle(req, res));
    meterSockets(this.server, this.#sockets, (n) => {
      this.bytes += n;
    });
  }

  static async start(): Promise<StatelessUpstream> {
    const u = new StatelessUpstream();
    await new Promise<void>((resolve) => u.server.listen(0, '127.0.0.1', resolve));
    u.url = `http://127.0.0.1:${(u.server.address() as AddressInfo).port}/mcp`;
    return u;
  }

  reset(): void {
    this.received.length = 0;
    this.bytes = 0;
  }

  last(): StatelessReceived | undefined {
    return this.received[this.received.length - 1];
  }

  /** Sends one notification on every open listen stream. */
  notify(message: unknown): void {
    for (const l of this.listeners) l.write(`data: ${JSON.stringify(message)}\n\n`);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const headers = new Map<string, string[]>();
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = (req.rawHeaders[i] as string).toLowerCase();
      headers.set(name, [...(headers.get(name) ?? []), req.rawHeaders[i + 1] as string]);
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    this.received.push({ headers, body });
    const msg = JSON.parse(body || '{}') as Rpc;
    const answer = (result: unknown, sse = false): void => {
      const text = JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { resultType: 'complete', ...(result as object) } });
      if (sse) res.writeHead(200, { 'content-type': 'text/event-stream' }).end(`event: message\ndata: ${text}\n\n`);
      else res.writeHead(200, { 'content-type': 'application/json' }).end(text);
    };
    switch (msg.method) {
      case 'server/discover':
        return answer({ supportedVersions: ['2026-07-28'], capabilities: { tools: { listChanged: true }, resources: { subscribe: true } }, serverInfo: { name: 'stateless', version: '1.0.0' } });
      case 'tools/list':
        return answer({ tools: this.tools, ttlMs: 60_000, cacheScope: 'public' }, this.sse);
      case 'resources/list':
        return answer({ resources: [{ uri: 'file:///docs/readme.md', name: 'readme' }, { uri: 'file:///etc/shadow', name: 'shadow' }], ttlMs: 5_000, cacheScope: 'public' }, this.sse);
      case 'tools/call':
        return answer({ content: [{ type: 'text', text: `called ${msg.params?.name ?? ''}` }] });
      case 'subscriptions/listen':
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { notifications: msg.params?.notifications ?? {}, _meta: { 'io.modelcontextprotocol/subscriptionId': msg.id } } })}\n\n`);
        this.listeners.push(res);
        res.on('close', () => this.listeners.splice(this.listeners.indexOf(res), 1));
        return;
      default:
        return answer({});
    }
  }

  async close(): Promise<void> {
    for (const l of this.listeners) l.destroy();
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
