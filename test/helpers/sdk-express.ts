import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { afterAll, beforeAll } from 'vitest';
import { z } from 'zod';
import { TestIdp } from './idp.ts';
import { startGateway, twoUpstreamConfig, type StartedGateway } from './gateway.ts';

/** The part of an Express app this fixture uses (the SDK's express types are not installed). */
interface ExpressApp {
  post(path: string, handler: (req: IncomingMessage & { body?: unknown }, res: ServerResponse) => void): void;
  listen(port: number, host: string, done: () => void): Server;
}

/** Tools whose handlers count executions: the proof that a denied tool never ran. */
export const SDK_TOOLS = ['read_file', 'delete_file', 'drop_database', 'search'] as const;
export type SdkTool = (typeof SDK_TOOLS)[number];

/**
 * An upstream built exactly as the MCP SDK documents it: createMcpExpressApp() (express.json(), which
 * decodes a body by its charset and inflates gzip, deflate and br) with a real McpServer per request
 * (stateless Streamable HTTP, JSON answers). Counts every byte at its socket and every tool execution.
 */
export class SdkExpressUpstream {
  readonly executions = new Map<string, number>();
  /** Everything that reached the socket, as latin1 (request heads and bodies, in order). */
  wire = '';
  url = '';
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;

  static async start(): Promise<SdkExpressUpstream> {
    const u = new SdkExpressUpstream();
    const app = createMcpExpressApp() as unknown as ExpressApp;
    app.post('/mcp', (req, res) => void u.#handle(req, res));
    await new Promise<void>((resolve) => {
      u.#server = app.listen(0, '127.0.0.1', resolve);
    });
    const server = u.#server as Server;
    server.on('connection', (s: Socket) => {
      u.#sockets.add(s);
      s.on('data', (d: Buffer) => {
        u.wire += d.toString('latin1');
      });
      s.on('close', () => u.#sockets.delete(s));
    });
    u.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return u;
  }

  get bytes(): number {
    return this.wire.length;
  }

  /** How many times a tool's handler ran. */
  ran(tool: SdkTool): number {
    return this.executions.get(tool) ?? 0;
  }

  totalRuns(): number {
    let n = 0;
    for (const v of this.executions.values()) n += v;
    return n;
  }

  reset(): void {
    this.wire = '';
    this.executions.clear();
  }

  async #handle(req: IncomingMessage & { body?: unknown }, res: ServerResponse): Promise<void> {
    const server = new McpServer({ name: 'sdk-express-upstream', version: '1.0.0' });
    const count = (tool: SdkTool): void => {
      this.executions.set(tool, (this.executions.get(tool) ?? 0) + 1);
    };
    server.registerTool('read_file', { description: 'Reads a file', inputSchema: { path: z.string() } }, ({ path }) => {
      count('read_file');
      return { content: [{ type: 'text', text: `contents of ${path}` }] };
    });
    for (const tool of ['delete_file', 'drop_database', 'search'] as const) {
      server.registerTool(tool, { description: tool }, () => {
        count(tool);
        return { content: [{ type: 'text', text: `${tool} ran` }] };
      });
    }
    server.registerPrompt('summarize', { description: 'Summarize' }, () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'summarize' } }] }));
    server.registerResource('readme', 'file:///docs/readme.md', { description: 'Readme' }, (uri) => ({ contents: [{ uri: uri.href, text: 'readme' }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void server.close());
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => (this.#server === undefined ? resolve() : this.#server.close(() => resolve())));
  }
}

/**
 * The policy both body and name tests judge: `/mcp` allows by default but denies delete_* and
 * file:///etc/, and wants mcp:admin for drop_database; `/other-mcp` denies by default and allows read_*
 * and resources under file:///docs/.
 */
export function sdkPolicyConfig(issuer: string, jwksUri: string, upstreamUrl: string): Record<string, unknown> {
  return twoUpstreamConfig({ issuer, jwksUri }, upstreamUrl, {
    mcp: {
      target: `${upstreamUrl}/mcp`,
      default: 'allow',
      tools: [{ name: 'delete_*', deny: true }, { name: 'drop_database', scopes: ['mcp:admin'] }],
      rules: [{ method: 'resources/read', resource: 'file:///etc/', deny: true }],
    },
    other: { target: `${upstreamUrl}/mcp`, default: 'deny', tools: [{ name: 'read_*' }], rules: [{ method: 'resources/read', resource: 'file:///docs/' }] },
  });
}

export interface SdkFixture {
  readonly idp: TestIdp;
  readonly upstream: SdkExpressUpstream;
  readonly gw: StartedGateway;
  readonly port: number;
}

/** beforeAll/afterAll: a TestIdp, an SdkExpressUpstream and a gateway with sdkPolicyConfig in front of it. */
export function useSdkFixture(): SdkFixture {
  let idp: TestIdp | undefined;
  let upstream: SdkExpressUpstream | undefined;
  let gw: StartedGateway | undefined;
  beforeAll(async () => {
    idp = await TestIdp.start();
    upstream = await SdkExpressUpstream.start();
    gw = await startGateway(sdkPolicyConfig(idp.issuer, idp.jwksUri, upstream.url));
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
    await idp?.close();
  });
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('sdk fixture read before beforeAll started it');
    return v;
  };
  return {
    get idp() {
      return need(idp);
    },
    get upstream() {
      return need(upstream);
    },
    get gw() {
      return need(gw);
    },
    get port() {
      return Number(new URL(need(gw).url).port);
    },
  };
}
