import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { InMemoryTaskStore } from '@modelcontextprotocol/sdk/experimental/tasks/stores/in-memory.js';
import { z } from 'zod';
import { TestIdp } from '../helpers/idp.ts';
import { AUD, startGateway, twoUpstreamConfig, type StartedGateway } from '../helpers/gateway.ts';
import { sendExact, type Reply } from '../helpers/wire.ts';

// Review finding: task ids are not bound to the caller the way Mcp-Session-Id and Last-Event-ID are.
// An upstream built like the SDK's own example (one InMemoryTaskStore for the process) and run
// stateless (the usual mode behind a gateway) stores tasks without a session, and the SDK store shows
// such tasks to every caller. So a low-privilege identity lists another identity's tasks
// (`tasks/list` is judged by method only, and its `tasks` result is no listing the filter reads) and
// fetches the result of a tool it may not call (`tasks/result`), which is the point 7 (replay
// of another identity's results through a store shared by all sessions) by another door.
const SECRET = 'payroll: 1,234,567';

interface ExpressApp {
  post(path: string, handler: (req: IncomingMessage & { body?: unknown }, res: ServerResponse) => void): void;
  listen(port: number, host: string, done: () => void): Server;
}

let idp: TestIdp;
let gw: StartedGateway;
let server: Server;
const taskStore = new InMemoryTaskStore();

beforeAll(async () => {
  idp = await TestIdp.start();
  const app = createMcpExpressApp() as unknown as ExpressApp;
  app.post('/mcp', (req, res) => {
    const mcp = new McpServer({ name: 'tasks-upstream', version: '1.0.0' }, { capabilities: { tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } } }, taskStore });
    mcp.experimental.tasks.registerToolTask('admin_report', { description: 'Admin-only report', inputSchema: { q: z.string().optional() } }, {
      async createTask(_args, { taskStore: store, taskRequestedTtl }) {
        const task = await store.createTask({ ttl: taskRequestedTtl ?? 60_000 });
        await store.storeTaskResult(task.taskId, 'completed', { content: [{ type: 'text', text: SECRET }] });
        return { task };
      },
      async getTask(_args, { taskId, taskStore: store }) {
        return await store.getTask(taskId);
      },
      async getTaskResult(_args, { taskId, taskStore: store }) {
        return (await store.getTaskResult(taskId)) as { content: { type: 'text'; text: string }[] };
      },
    });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void mcp.close());
    void mcp.connect(transport).then(() => transport.handleRequest(req, res, req.body));
  });
  await new Promise<void>((resolve) => {
    server = app.listen(0, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  gw = await startGateway(twoUpstreamConfig({ issuer: idp.issuer, jwksUri: idp.jwksUri }, url, {
    mcp: { target: `${url}/mcp`, default: 'allow', tools: [{ name: 'admin_*', scopes: ['mcp:admin'] }] },
  }));
});
afterAll(async () => {
  await gw?.close();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  await idp?.close();
});

async function rpc(sub: string, scope: string, body: unknown): Promise<Reply> {
  const token = await idp.token(AUD, { sub, scope });
  return sendExact(Number(new URL(gw.url).port), 'POST', '/mcp', [
    ['Authorization', `Bearer ${token}`], ['Accept', 'application/json, text/event-stream'], ['Content-Type', 'application/json'],
    ['MCP-Protocol-Version', '2025-11-25'],
  ], JSON.stringify(body));
}

describe("one identity cannot reach another identity's tasks", () => {
  it("task-augmented calls and every tasks/* method are refused (fail closed until task ids are bound); the upstream's store never sees a task", async () => {
    // Control: bob may not run the tool himself.
    const own = await rpc('bob', 'mcp:tools', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'admin_report', task: { ttl: 60_000 } } });
    expect(own.status).toBe(403);

    const created = await rpc('alice', 'mcp:tools mcp:admin', { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'admin_report', task: { ttl: 60_000 } } });
    expect(created.status).toBe(403);
    expect(JSON.parse(created.text)).toMatchObject({ id: 2, error: { data: { reason: 'tasks_unsupported' } } });
    expect(await taskStore.listTasks(undefined)).toMatchObject({ tasks: [] });

    for (const [id, method, params] of [[3, 'tasks/list', {}], [4, 'tasks/result', { taskId: 'any' }], [5, 'tasks/get', { taskId: 'any' }], [6, 'tasks/cancel', { taskId: 'any' }]] as const) {
      const reply = await rpc('bob', 'mcp:tools', { jsonrpc: '2.0', id, method, params });
      expect(reply.status, method).toBe(403);
      expect(JSON.parse(reply.text)).toMatchObject({ id, error: { data: { reason: 'tasks_unsupported' } } });
      expect(reply.text).not.toContain(SECRET);
    }
  });

  it('the same call without a task runs as usual for the caller allowed to', async () => {
    const plain = await rpc('alice', 'mcp:tools mcp:admin', { jsonrpc: '2.0', id: 7, method: 'tools/list', params: {} });
    expect(plain.status).toBe(200);
    expect(plain.text).toContain('admin_report');
  });
});
