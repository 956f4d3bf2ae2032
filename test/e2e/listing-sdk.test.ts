import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { TestIdp } from '../helpers/idp.ts';
import { AUD, AUD_OTHER, PUBLIC_URL, startGateway, type StartedGateway } from '../helpers/gateway.ts';

// SC-191 with real SDKs on both sides: the upstream is the MCP SDK's own Express app
// (createMcpExpressApp, express.json()), the client the SDK's Client over its Streamable HTTP
// transport. Every byte the client transport received is kept and searched for hidden names.

const HIDDEN = ['delete_repo', 'admin_reset', 'secret_prompt', 'file:///etc/shadow', 'file:///{path}'];
const executed: string[] = [];
let idp: TestIdp;
let gw: StartedGateway;
const servers: Server[] = [];

function buildServer(): McpServer {
  const s = new McpServer({ name: 'sdk-upstream', version: '1.0.0' });
  for (const name of ['search', 'delete_repo', 'admin_reset']) {
    s.registerTool(name, { description: `the ${name} tool` }, () => {
      executed.push(name);
      return { content: [{ type: 'text', text: `${name} ran` }] };
    });
  }
  for (const name of ['summarize', 'secret_prompt']) {
    s.registerPrompt(name, { description: `the ${name} prompt` }, () => ({ messages: [{ role: 'user', content: { type: 'text', text: name } }] }));
  }
  const read = (uri: URL): { contents: { uri: string; text: string }[] } => ({ contents: [{ uri: uri.href, text: 'x' }] });
  s.registerResource('doc-a', 'file:///docs/a.md', {}, read);
  s.registerResource('shadow', 'file:///etc/shadow', {}, read);
  s.registerResource('doc', new ResourceTemplate('file:///docs/{name}', { list: undefined }), {}, read);
  s.registerResource('any', new ResourceTemplate('file:///{path}', { list: undefined }), {}, read);
  return s;
}

/** The SDK's Express app, stateless: a fresh server and transport per POST, as the SDK's examples do. */
async function startSdkUpstream(enableJsonResponse: boolean): Promise<string> {
  const app = createMcpExpressApp();
  app.post('/mcp', async (req: IncomingMessage & { body?: unknown }, res: ServerResponse) => {
    const server = buildServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
}

beforeAll(async () => {
  idp = await TestIdp.start();
  const issuers = ['idp'];
  const policy = {
    issuers, scopes: ['mcp:tools'], default: 'deny',
    tools: [{ name: 'search' }, { name: 'delete_*', scopes: ['mcp:admin'] }, { name: 'admin_reset', deny: true }],
    rules: [
      { method: 'tools/list' }, { method: 'prompts/list' }, { method: 'resources/list' }, { method: 'resources/templates/list' },
      { method: 'prompts/get', prompt: 'summarize' }, { method: 'resources/read', resource: 'file:///docs/' },
    ],
  };
  gw = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    publicUrl: PUBLIC_URL,
    issuers: [{ name: 'idp', issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'] }],
    upstreams: [
      { name: 'mcp', path: '/mcp', target: await startSdkUpstream(false), ...policy },
      { name: 'other', path: '/other-mcp', target: await startSdkUpstream(true), ...policy },
    ],
    identity: { signingKeyFile: 'gateway.jwk' },
  });
});
afterAll(async () => {
  await gw?.close();
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  await idp?.close();
});

/** Every byte of a body, also of a stream the client aborts (its SSE streams end that way on close). */
async function collect(body: ReadableStream<Uint8Array>): Promise<string> {
  const chunks: Uint8Array[] = [];
  try {
    for await (const c of body) chunks.push(c);
  } catch {
    // aborted by the client: what arrived so far is what it received
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/** An SDK client whose transport's fetch keeps a copy of every response body it reads. */
async function connect(path: string, aud: string): Promise<{ client: Client; bodies: () => Promise<string[]> }> {
  const token = await idp.token(aud, { scope: 'mcp:tools' });
  const pending: Promise<string>[] = [];
  const tap = async (url: string | URL, init?: RequestInit): Promise<globalThis.Response> => {
    const res = await fetch(url, init);
    if (res.body === null) return res;
    const [mine, theirs] = res.body.tee();
    pending.push(collect(theirs));
    return new globalThis.Response(mine, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  const client = new Client({ name: 'listing-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(gw.url + path), { requestInit: { headers: { authorization: `Bearer ${token}` } }, fetch: tap }));
  return { client, bodies: () => Promise.all(pending) };
}

describe.each([
  ['SSE answers', '/mcp', AUD],
  ['JSON answers', '/other-mcp', AUD_OTHER],
])('an SDK client through the gateway to createMcpExpressApp (%s)', (_mode, path, aud) => {
  it('SC-191 lists only the tools, prompts, resources and templates it may use; no hidden name in any byte it received', async () => {
    const { client, bodies } = await connect(path, aud);
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['search']);
    expect((await client.listPrompts()).prompts.map((p) => p.name)).toEqual(['summarize']);
    expect((await client.listResources()).resources.map((r) => r.uri)).toEqual(['file:///docs/a.md']);
    expect((await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate)).toEqual(['file:///docs/{name}']);
    await client.close();
    const all = (await bodies()).join('\n');
    expect(all).toContain('search');
    for (const name of HIDDEN) expect(all).not.toContain(name);
  });

  it('SC-191 the hidden tools stay refused: calling them never executes them upstream', async () => {
    executed.length = 0;
    const { client } = await connect(path, aud);
    await expect(client.callTool({ name: 'delete_repo', arguments: {} })).rejects.toThrow();
    await expect(client.callTool({ name: 'admin_reset', arguments: {} })).rejects.toThrow();
    expect((await client.callTool({ name: 'search', arguments: {} })).content).toEqual([{ type: 'text', text: 'search ran' }]);
    await client.close();
    expect(executed).toEqual(['search']);
  });
});
