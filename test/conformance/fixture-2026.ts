// The 2026-07-28 conformance fixture server: the SDK v2 server (`createMcpHandler`, stateless, both
// eras) over node:http at /mcp, with the fixtures the 2026-07-28 server scenarios of
// @modelcontextprotocol/conformance 0.2.0-alpha.12 call by name (read from each scenario's
// description), Host/Origin validation, and a record of every request and byte that reached it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import { acceptedContent, completable, createMcpHandler, inputRequired, McpServer, ResourceTemplate } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { meterSockets } from '../helpers/socket-meter.ts';
import type { FixtureServer, FixtureRequest } from './fixture-server.ts';

const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV = 'UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=';
const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

const text = (t: string): { content: { type: 'text'; text: string }[] } => ({ content: [{ type: 'text', text: t }] });

function registerContentTools(server: McpServer): void {
  server.registerTool('test_simple_text', { description: 'Returns simple text' }, () => text('This is a simple text response for testing.'));
  server.registerTool('test_image_content', { description: 'Returns an image' }, () => ({ content: [{ type: 'image', data: PNG, mimeType: 'image/png' }] }));
  server.registerTool('test_audio_content', { description: 'Returns audio' }, () => ({ content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }] }));
  server.registerTool('test_embedded_resource', { description: 'Returns an embedded resource' }, () => ({
    content: [{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }],
  }));
  server.registerTool('test_multiple_content_types', { description: 'Returns text, image and resource' }, () => ({
    content: [
      { type: 'text', text: 'Multiple content types test:' },
      { type: 'image', data: PNG, mimeType: 'image/png' },
      { type: 'resource', resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: JSON.stringify({ test: 'data', value: 123 }) } },
    ],
  }));
  server.registerTool('test_error_handling', { description: 'Always fails' }, () => {
    throw new Error('This tool intentionally returns an error for testing');
  });
  server.registerTool('test_tool_with_progress', { description: 'Reports progress 0, 50, 100 of 100', inputSchema: z.object({}) }, async (_args, ctx) => {
    const progressToken = ctx.mcpReq._meta?.progressToken;
    for (const progress of [0, 50, 100]) {
      if (progressToken !== undefined) {
        await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress, total: 100, message: `Completed step ${progress} of 100` } });
      }
    }
    return text(String(progressToken ?? 'no progress token'));
  });
  // SEP-2243 (pending scenario http-custom-header-server-validation): a parameter mirrored into Mcp-Param-Region.
  server.registerTool('test_custom_header', {
    description: 'Echoes a region mirrored into Mcp-Param-Region',
    inputSchema: z.object({ region: z.string().meta({ 'x-mcp-header': 'Region' }) }),
  }, ({ region }) => text(`region ${region}`));
}

/** Multi round-trip tools (SEP-2322): the first call asks for input, the retry with the answer completes. */
function registerInputRequiredTools(server: McpServer): void {
  const name = z.object({ name: z.string() });
  server.registerTool('test_input_required_result_elicitation', { description: 'Asks for a name', inputSchema: z.object({}) }, (_args, ctx) => {
    const answer = acceptedContent(ctx.mcpReq.inputResponses, 'user_name', name);
    if (answer === undefined) return inputRequired({ inputRequests: { user_name: inputRequired.elicit({ message: 'What is your name?', requestedSchema: name }) } });
    return text(`Hello, ${answer.name}!`);
  });
  server.registerTool('test_input_required_result_sampling', { description: 'Asks the client model', inputSchema: z.object({}) }, (_args, ctx) => {
    const answer = ctx.mcpReq.inputResponses?.['capital_question'];
    if (answer === undefined) {
      return inputRequired({ inputRequests: { capital_question: inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: 'What is the capital of France?' } }], maxTokens: 100 }) } });
    }
    return text(`Sampling answered: ${JSON.stringify(answer)}`);
  });
  server.registerTool('test_input_required_result_list_roots', { description: 'Asks for the roots', inputSchema: z.object({}) }, (_args, ctx) => {
    const answer = ctx.mcpReq.inputResponses?.['client_roots'];
    if (answer === undefined) return inputRequired({ inputRequests: { client_roots: inputRequired.listRoots() } });
    return text(`Roots: ${JSON.stringify(answer)}`);
  });
}

function registerResourcesAndPrompts(server: McpServer): void {
  server.registerResource('static-text', 'test://static-text', { description: 'Static text', mimeType: 'text/plain' }, () => ({
    contents: [{ uri: 'test://static-text', mimeType: 'text/plain', text: 'This is the content of the static text resource.' }],
  }));
  server.registerResource('static-binary', 'test://static-binary', { description: 'Static binary', mimeType: 'image/png' }, () => ({
    contents: [{ uri: 'test://static-binary', mimeType: 'image/png', blob: PNG }],
  }));
  server.registerResource('template', new ResourceTemplate('test://template/{id}/data', { list: undefined }), { description: 'Template', mimeType: 'application/json' }, (uri, { id }) => ({
    contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${String(id)}` }) }],
  }));
  server.registerPrompt('test_simple_prompt', { description: 'A prompt without arguments' }, () => ({
    messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }],
  }));
  server.registerPrompt('test_prompt_with_arguments', {
    description: 'A prompt with two arguments',
    argsSchema: z.object({ arg1: completable(z.string(), (value) => ['test-one', 'test-two'].filter((v) => v.startsWith(value))), arg2: z.string() }),
  }, ({ arg1, arg2 }) => ({
    messages: [{ role: 'user', content: { type: 'text', text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } }],
  }));
  server.registerPrompt('test_prompt_with_embedded_resource', { description: 'A prompt embedding a resource', argsSchema: z.object({ resourceUri: z.string() }) }, ({ resourceUri }) => ({
    messages: [
      { role: 'user', content: { type: 'resource', resource: { uri: resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' } } },
      { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } },
    ],
  }));
  server.registerPrompt('test_prompt_with_image', { description: 'A prompt with an image' }, () => ({
    messages: [
      { role: 'user', content: { type: 'image', data: PNG, mimeType: 'image/png' } },
      { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } },
    ],
  }));
}

export function buildConformanceServer2026(): McpServer {
  const server = new McpServer({ name: 'mcp-warden-conformance-fixture-2026', version: '1.0.0' }, { capabilities: { resources: {}, prompts: {}, tools: {}, completions: {} } });
  registerContentTools(server);
  registerInputRequiredTools(server);
  registerResourcesAndPrompts(server);
  return server;
}

/** MCP transports "Security Warning": a local server validates Host and Origin (any port). */
function isLocal(value: string | undefined, withScheme: boolean): boolean {
  if (value === undefined) return !withScheme;
  const url = URL.parse(withScheme ? value : `http://${value}`);
  return url !== null && LOCAL_HOSTS.has(url.hostname);
}

export async function startFixtureServer2026(): Promise<FixtureServer> {
  const handler = createMcpHandler(() => buildConformanceServer2026());
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
    const headers = new Headers();
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i] as string, req.rawHeaders[i + 1] as string);
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    const response = await handler.fetch(new Request(`http://${req.headers.host ?? '127.0.0.1'}${req.url ?? '/'}`, {
      method: req.method ?? 'GET', headers, signal: abort.signal, ...(hasBody ? { body: Buffer.concat(chunks) } : {}),
    }));
    const out: Record<string, string> = {};
    response.headers.forEach((v, k) => {
      out[k] = v;
    });
    res.writeHead(response.status, out);
    if (response.body === null) res.end();
    else Readable.fromWeb(response.body as import('node:stream/web').ReadableStream).on('error', () => res.destroy()).pipe(res);
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  meterSockets(server, sockets, (n) => {
    bytes += n;
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
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
      await handler.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
