import { Agent, createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import { createProxyServer } from 'http-proxy-3';
import { announceReady, serveIpc } from './ipc.ts';

// The "bare proxy" baseline: http-proxy-3 on the same Node, no auth, keep-alive to the upstream and no
// cap on upstream sockets (SSE streams each hold one).

const target = process.argv[2] as string;
const agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256 });
const proxy = createProxyServer({ target, agent });
proxy.on('error', (_err, _req, res) => {
  const r = res as ServerResponse;
  if (typeof r.writeHead !== 'function') return;
  if (!r.headersSent) r.writeHead(502, { 'content-length': '0' });
  r.end();
});

const server = createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.requestTimeout = 0;

const gc = (globalThis as { gc?: () => void }).gc;
// Heap use and GC count, for allocation per request (bench/alloc.ts), as gateway-child.ts reports them.
let gcCount = 0;
new PerformanceObserver((list) => void (gcCount += list.getEntries().length)).observe({ entryTypes: ['gc'] });

serveIpc({
  stats: () => ({ heapUsedBytes: process.memoryUsage().heapUsed, gcCount, rssKiB: Math.round(process.memoryUsage.rss() / 1024), heapUsedKiB: Math.round(process.memoryUsage().heapUsed / 1024) }),
  gc: () => {
    gc?.();
    gc?.();
    return gc !== undefined;
  },
  exit: () => {
    server.closeAllConnections();
    server.close();
    agent.destroy();
    setImmediate(() => process.exit(0));
  },
});

server.listen(Number(process.argv[3] ?? 0), '127.0.0.1', () => announceReady({ port: (server.address() as AddressInfo).port }));
