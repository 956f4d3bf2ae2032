import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool, type Dispatcher } from 'undici';
import { announceReady, serveIpc } from './ipc.ts';
import { cpuProfiler } from './cpu-profiler.ts';
import { gcCounter, pauseWindow } from './pauses.ts';

// The machinery floor (issue 25): the gateway's own machinery with none of its work. node:http server,
// an undici Pool to the upstream driven with `dispatch`, the request body read whole and the answer
// collected and sent in one write, no auth, no policy, no audit line, no metrics. What the full
// pipeline costs above this is the gateway's own work.

type Controller = Parameters<NonNullable<Dispatcher.DispatchHandler['onRequestStart']>>[0];

const target = new URL(process.argv[2] as string);
const pool = new Pool(target.origin, { connections: 128, keepAliveTimeout: 60_000 });

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    const headers: Record<string, string> = { 'content-length': String(body.length) };
    for (const name of ['content-type', 'accept', 'mcp-protocol-version']) {
      const v = req.headers[name];
      if (typeof v === 'string') headers[name] = v;
    }
    const parts: Buffer[] = [];
    let status = 502;
    let contentType = 'application/json';
    pool.dispatch({ origin: target.origin, path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers, body }, {
      onRequestStart: () => undefined,
      onResponseStart: (_c: Controller, code: number, h: Record<string, string | string[] | undefined>) => {
        status = code;
        const ct = h['content-type'];
        if (typeof ct === 'string') contentType = ct;
      },
      onResponseData: (_c: Controller, chunk: Buffer) => void parts.push(chunk),
      onResponseEnd: () => {
        const answer = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
        res.writeHead(status, { 'content-type': contentType, 'content-length': String(answer.length) });
        res.end(answer);
      },
      onResponseError: () => {
        if (!res.headersSent) res.writeHead(502, { 'content-length': '0' });
        res.end();
      },
    });
  });
});
server.keepAliveTimeout = 65_000;

// Heap use and GC count, for allocation per request (bench/alloc.ts): the same stats as gateway-child.ts.
const gcCount = gcCounter();

// Its event loop's pauses at the fixed rate, measured as the gateway's are: the machine's share of them.
const pauses = pauseWindow();

// Its CPU profile under load, sampled as the gateway's is: the differential profile in results.md.
const cpu = cpuProfiler();

serveIpc({
  pausesStart: () => pauses.start(),
  pausesStop: () => pauses.stop(),
  profileStart: () => cpu.start(),
  profileStop: (file) => cpu.stop(file as string),
  stats: () => ({ heapUsedBytes: process.memoryUsage().heapUsed, gcCount: gcCount() }),
  exit: () => {
    server.closeAllConnections();
    server.close();
    void pool.close();
    setImmediate(() => process.exit(0));
  },
});

server.listen(0, '127.0.0.1', () => announceReady({ port: (server.address() as AddressInfo).port }));
