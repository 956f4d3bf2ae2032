import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { announceReady, serveIpc } from './ipc.ts';

// The minimal fast MCP upstream: JSON-RPC answers for tools/list and tools/call on POST, and an SSE
// stream on GET that sends one event per second stamped with the monotonic clock (process.hrtime is
// CLOCK_MONOTONIC, shared by every process on the machine), so a client can measure delivery latency.

const TOOLS = [
  { name: 'search', description: 'Search files', inputSchema: { type: 'object', properties: { q: { type: 'string' } } } },
  { name: 'delete_file', description: 'Delete a file', inputSchema: { type: 'object', properties: { path: { type: 'string' } } } },
];

let requests = 0;
let withIdentity = 0;
let streams = 0;

function answer(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

function rpc(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let msg: { id?: string | number; method?: string };
    try {
      msg = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: string | number; method?: string };
    } catch {
      return answer(res, 400, '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}');
    }
    if (msg.id === undefined) {
      res.writeHead(202, { 'content-length': '0' });
      return void res.end();
    }
    const result = msg.method === 'tools/list' ? { tools: TOOLS } : msg.method === 'tools/call' ? { content: [{ type: 'text', text: 'ok' }], isError: false } : {};
    answer(res, 200, JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
  });
}

function sse(res: ServerResponse): void {
  streams++;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
  // Each stream gets its own phase within the second, so 5,000 streams are not one burst.
  let interval: NodeJS.Timeout | undefined;
  const send = (): void => {
    res.write(`data: {"t":"${process.hrtime.bigint()}"}\n\n`);
  };
  const first = setTimeout(() => {
    send();
    interval = setInterval(send, 1_000);
  }, Math.random() * 1_000);
  res.once('close', () => {
    streams--;
    clearTimeout(first);
    clearInterval(interval);
  });
}

const server = createServer((req, res) => {
  requests++;
  if (req.headers['x-mcp-identity'] !== undefined) withIdentity++;
  if (req.method === 'POST') return rpc(req, res);
  if (req.method === 'GET' && /text\/event-stream/.test(req.headers.accept ?? '')) return sse(res);
  answer(res, 405, '{}');
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.requestTimeout = 0;

// Event-loop delay of the upstream itself (SSE sends are timer-driven): reported beside latencies.
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();

serveIpc({
  stats: () => ({ requests, withIdentity, streams, loopP99ms: Math.max(0, loop.percentile(99) / 1e6 - 10) }),
  resetLoop: () => loop.reset(),
  exit: () => {
    server.closeAllConnections();
    server.close();
    setImmediate(() => process.exit(0));
  },
});

server.listen(0, '127.0.0.1', () => announceReady({ port: (server.address() as AddressInfo).port }));
