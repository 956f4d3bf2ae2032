// The conformance fixture server: the SDK's Streamable HTTP transport (stateful sessions) over
// node:http at /mcp, with DNS-rebinding protection, recording every request and every byte that
// reaches its sockets so a run can prove what did (and did not) arrive.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { buildConformanceServer } from './fixtures.ts';

export interface FixtureRequest {
  readonly method: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export interface FixtureServer {
  readonly url: string;
  readonly requests: readonly FixtureRequest[];
  /** Bytes received on every socket, counted before any parsing. */
  bytes(): number;
  reset(): void;
  close(): Promise<void>;
}

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * MCP transports "Security Warning": a local server validates Host and Origin. Any port is accepted:
 * behind the gateway the Origin names the gateway's port, and the gateway has checked it already.
 */
function isLocal(value: string | undefined, withScheme: boolean): boolean {
  if (value === undefined) return !withScheme;
  const url = URL.parse(withScheme ? value : `http://${value}`);
  return url !== null && LOCAL_HOSTS.has(url.hostname);
}

export async function startFixtureServer(port = 0): Promise<FixtureServer> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const requests: FixtureRequest[] = [];
  const sockets = new Set<Socket>();
  let bytes = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    requests.push({ method: req.method ?? '', headers: { ...req.headers } });
    if (!isLocal(req.headers.host, false) || (req.headers.origin !== undefined && !isLocal(req.headers.origin, true))) {
      res.writeHead(403, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","error":{"code":-32000,"message":"Host or Origin not allowed"},"id":null}');
      return;
    }
    if ((req.url ?? '').split('?')[0] !== '/mcp') {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = raw === '' ? undefined : (JSON.parse(raw) as unknown);
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}');
      return;
    }
    const sessionId = req.headers['mcp-session-id'];
    const existing = typeof sessionId === 'string' ? transports.get(sessionId) : undefined;
    if (existing !== undefined) {
      await existing.handleRequest(req, res, body);
      return;
    }
    if (sessionId !== undefined || req.method !== 'POST' || !isInitializeRequest(body)) {
      res.writeHead(sessionId === undefined ? 400 : 404, { 'content-type': 'application/json' })
        .end('{"jsonrpc":"2.0","error":{"code":-32000,"message":"Invalid or missing session ID"},"id":null}');
      return;
    }
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        transports.set(id, transport);
      },
    });
    const server = buildConformanceServer();
    transport.onclose = () => {
      if (transport.sessionId !== undefined) transports.delete(transport.sessionId);
      void server.close();
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('data', (d: Buffer) => {
      bytes += d.length;
    });
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    requests,
    bytes: () => bytes,
    reset() {
      requests.length = 0;
      bytes = 0;
    },
    async close() {
      for (const t of transports.values()) await t.close().catch(() => undefined);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
