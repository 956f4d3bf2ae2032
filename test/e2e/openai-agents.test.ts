import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MCPServerStreamableHttp } from '@openai/agents';
import { TestIdp } from '../helpers/idp.ts';
import { V2Upstream } from '../helpers/sdk-v2.ts';
import { AUD, PUBLIC_URL, startGateway, type StartedGateway } from '../helpers/gateway.ts';

// The OpenAI Agents SDK's MCP client (it negotiates the era with server/discover, then speaks
// 2026-07-28) against an SDK v2 upstream behind `default: deny` with one allow rule. Before issue 16
// it could not connect at all: server/discover was refused (403).

let idp: TestIdp;
let up: V2Upstream;
let gw: StartedGateway;

beforeAll(async () => {
  vi.spyOn(console, 'warn').mockImplementation(() => undefined);
  idp = await TestIdp.start();
  up = await V2Upstream.start();
  gw = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    publicUrl: PUBLIC_URL,
    issuers: [{ name: 'idp', issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'], clockSkewSeconds: 0 }],
    upstreams: [{ name: 'mcp', path: '/mcp', target: up.url, issuers: ['idp'], scopes: ['mcp:tools'], default: 'deny', tools: [{ name: 'search' }], rules: [{ method: 'tools/list' }] }],
    identity: { signingKeyFile: 'gateway.jwk' },
  });
});
afterAll(async () => {
  await gw?.close();
  await up?.close();
  await idp?.close();
});

async function agentServer(url: string, token: string | undefined): Promise<MCPServerStreamableHttp> {
  const server = new MCPServerStreamableHttp({
    url, name: 'warden', cacheToolsList: false,
    ...(token === undefined ? {} : { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
  });
  await server.connect();
  return server;
}

describe('OpenAI Agents SDK MCP client', () => {
  it('connects through a default-deny upstream, sees only the allowed tool and calls it as it would direct', async () => {
    const direct = await agentServer(up.url, undefined);
    const through = await agentServer(`${gw.url}/mcp`, await idp.token(AUD));
    try {
      expect((await direct.listTools()).map((t) => t.name)).toContain('delete_repo');
      expect((await through.listTools()).map((t) => t.name)).toEqual(['search']);
      const d = await direct.callTool('search', { region: 'us-west1', q: 'x' });
      const t = await through.callTool('search', { region: 'us-west1', q: 'x' });
      expect(t).toEqual(d);
      expect(JSON.stringify(t)).toContain('results for x in us-west1');
      // It spoke 2026-07-28, with the parameter mirrored into its header.
      const call = up.received.filter((r) => r.body.includes('"tools/call"')).at(-1);
      expect(call?.headers.get('mcp-protocol-version')).toEqual(['2026-07-28']);
      expect(call?.headers.get('mcp-param-region')).toEqual(['us-west1']);
      await expect(through.callTool('delete_repo', {})).rejects.toThrow();
      expect(up.received.some((r) => r.body.includes('"tools/call"') && r.body.includes('delete_repo'))).toBe(false);
    } finally {
      await direct.close();
      await through.close();
    }
  });
});
