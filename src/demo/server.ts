import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { requireIdentity, type VerifiedIdentity } from '../identity/upstream.ts';

export interface DemoServerOptions {
  readonly host: string;
  readonly port: number;
  /** The gateway's JWKS and issuer; each MCP endpoint path with its audience as the gateway knows it. */
  readonly gatewayJwksUrl: string;
  readonly gatewayIssuer: string;
  readonly endpoints: readonly { readonly path: string; readonly audience: string }[];
}

/**
 * The demo MCP server: it trusts nothing but the gateway's signed assertion (mcp-warden/upstream),
 * listens on loopback only, and offers a read-only tool, an admin tool and an identity echo.
 */
export async function startDemoServer(options: DemoServerOptions): Promise<{ url: string; close(): Promise<void> }> {
  const guards = new Map(options.endpoints.map((e) => [e.path, requireIdentity({ jwksUrl: options.gatewayJwksUrl, audience: e.audience, issuer: options.gatewayIssuer })]));
  const server: Server = createServer((req: IncomingMessage & { identity?: VerifiedIdentity }, res) => {
    const guard = guards.get((req.url ?? '').split('?')[0] as string);
    if (guard === undefined) return void res.writeHead(404).end();
    guard(req, res, () => {
      const identity = req.identity as VerifiedIdentity;
      const mcp = new McpServer({ name: 'mcp-warden-demo', version: '1.0.0' });
      mcp.registerTool('get_time', { description: 'Returns the server time (read-only)' }, () => ({
        content: [{ type: 'text', text: new Date().toISOString() }],
      }));
      mcp.registerTool('whoami', { description: 'Returns the identity this server verified from the gateway assertion' }, () => ({
        content: [{ type: 'text', text: JSON.stringify({ sub: identity.sub, clientId: identity.clientId, scopes: identity.scopes, originalIssuer: identity.originalIssuer }) }],
      }));
      mcp.registerTool('admin_reset', { description: 'Pretends to reset the demo (needs the admin scope)' }, () => ({
        content: [{ type: 'text', text: `reset requested by ${identity.sub}` }],
      }));
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on('close', () => void mcp.close());
      void mcp.connect(transport).then(() => transport.handleRequest(req, res));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host}:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
