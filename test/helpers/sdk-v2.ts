import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import { acceptedContent, createMcpHandler, inputRequired, McpServer, type McpHttpHandler } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { meterSockets } from './socket-meter.ts';

export interface V2Received {
  readonly method: string;
  readonly headers: ReadonlyMap<string, readonly string[]>;
  readonly body: string;
}

/**
 * The MCP TypeScript SDK v2 server (`createMcpHandler`, both eras: 2026-07-28 and the stateless 2025
 * fallback) on node:http, recording what reaches it. Tools: `search` (its `region` mirrored into
 * Mcp-Param-Region), `grüße` (a name that needs Base64 in Mcp-Name), `confirm_delete` (asks for input,
 * MRTR), `slow_count` (progress), `delete_repo`; resources readme and shadow.
 */
export class V2Upstream {
  readonly server: Server;
  readonly received: V2Received[] = [];
  /** Bytes that reached this server's sockets, counted before any parsing. */
  bytes = 0;
  readonly handler: McpHttpHandler;
  url = '';
  readonly #sockets = new Set<Socket>();

  private constructor() {
    this.handler = createMcpHandler(() => buildServer());
    this.server = createServer((req, res) => void this.#handle(req, res));
    meterSockets(this.server, this.#sockets, (n) => {
      this.bytes += n;
    });
  }

  static async start(): Promise<V2Upstream> {
    const u = new V2Upstream();
    await new Promise<void>((resolve) => u.server.listen(0, '127.0.0.1', resolve));
    u.url = `http://127.0.0.1:${(u.server.address() as AddressInfo).port}/mcp`;
    return u;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const headers = new Map<string, string[]>();
    const init = new Headers();
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = (req.rawHeaders[i] as string).toLowerCase();
      headers.set(name, [...(headers.get(name) ?? []), req.rawHeaders[i + 1] as string]);
      init.append(name, req.rawHeaders[i + 1] as string);
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    this.received.push({ method: req.method ?? '', headers, body: body.toString('utf8') });
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const request = new Request(`http://${req.headers.host ?? '127.0.0.1'}${req.url ?? '/'}`, {
      method: req.method ?? 'GET', headers: init, signal: abort.signal,
      ...(req.method === 'GET' || req.method === 'HEAD' ? {} : { body }),
    });
    const response = await this.handler.fetch(request);
    const out: Record<string, string> = {};
    response.headers.forEach((v, k) => {
      out[k] = v;
    });
    res.writeHead(response.status, out);
    if (response.body === null) {
      res.end();
      return;
    }
    Readable.fromWeb(response.body as import('node:stream/web').ReadableStream).on('error', () => res.destroy()).pipe(res);
  }

  async close(): Promise<void> {
    await this.handler.close();
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function buildServer(): McpServer {
  const server = new McpServer({ name: 'v2-upstream', version: '1.0.0' }, { capabilities: { resources: { subscribe: true, listChanged: true }, tools: { listChanged: true } } });
  server.registerTool('search', {
    description: 'Searches one region',
    inputSchema: z.object({ region: z.string().meta({ 'x-mcp-header': 'Region' }), q: z.string().optional() }),
  }, ({ region, q }) => ({ content: [{ type: 'text', text: `results for ${q ?? ''} in ${region}` }] }));
  server.registerTool('grüße', { description: 'Greets' }, () => ({ content: [{ type: 'text', text: 'hallo' }] }));
  const confirmation = z.object({ confirm: z.boolean() });
  server.registerTool('confirm_reset', { description: 'Resets after a confirmation (multi round-trip)', inputSchema: z.object({}) }, (_args, ctx) => {
    if (acceptedContent(ctx.mcpReq.inputResponses, 'confirm')?.['confirm'] !== true) {
      return inputRequired({ inputRequests: { confirm: inputRequired.elicit({ message: 'Reset?', requestedSchema: confirmation }) }, requestState: 'round-1' });
    }
    return { content: [{ type: 'text', text: 'reset confirmed' }] };
  });
  server.registerTool('slow_count', { description: 'Counts to three with progress', inputSchema: z.object({}) }, async (_args, ctx) => {
    const token = ctx.mcpReq._meta?.progressToken;
    for (let i = 1; i <= 3 && token !== undefined; i++) {
      await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: 3 } });
    }
    return { content: [{ type: 'text', text: 'counted' }] };
  });
  server.registerTool('delete_repo', { description: 'Deletes a repository' }, () => ({ content: [{ type: 'text', text: 'deleted' }] }));
  server.registerResource('readme', 'file:///docs/readme.md', { description: 'Readme' }, (uri) => ({ contents: [{ uri: uri.href, text: 'readme' }] }));
  server.registerResource('shadow', 'file:///etc/shadow', { description: 'Secret' }, (uri) => ({ contents: [{ uri: uri.href, text: 'root:x' }] }));
  return server;
}
